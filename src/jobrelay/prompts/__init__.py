"""`prompt.generate`: AI prompt enhancement run inside the worker, with a 0-100 progress bar."""
