"""Quiz generation: the client input, the generator hand-off, the stored questions."""
