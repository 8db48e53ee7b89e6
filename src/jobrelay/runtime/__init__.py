"""What every job kind shares in the worker: claim, progress reporting, retries, one terminal state."""
