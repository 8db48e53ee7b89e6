"""The reference AI generator run by `jobrelay generator` (see `jobrelay.generator.app`)."""

from jobrelay.generator.app import create_app, run

__all__ = ["create_app", "run"]
