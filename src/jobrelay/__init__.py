"""jobrelay: submit slow work, get 202 and an id, follow it to the end."""

__version__ = "0.1.0"

from jobrelay.client import ApiError, AsyncClient, Client, Event, Job
from jobrelay.kinds import JobContext, JobFailed, kind

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "Event",
    "Job",
    "JobContext",
    "JobFailed",
    "__version__",
    "kind",
]
