"""The `jobrelay` command line."""

from jobrelay.cli.app import app, main

__all__ = ["app", "main"]
