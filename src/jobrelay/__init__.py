"""jobrelay: submit slow work, get 202 and an id, follow it to the end."""

__version__ = "0.1.0"
