"""jobrelay: submit slow work, get 202 and an id, follow it to the end."""

from jobrelay.client import ApiError, AsyncClient, Client, Event, Job

__all__ = ["ApiError", "AsyncClient", "Client", "Event", "Job"]

__version__ = "0.1.0"
