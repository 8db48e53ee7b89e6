"""Jobs: submit, read, list, cancel, retry; the state machine every writer obeys."""
