"""Call jobrelay from Python: `Client` (blocking) and `AsyncClient` (asyncio).

    from jobrelay import Client, ApiError

    with Client() as client:                      # JOBRELAY_API_URL, JOBRELAY_API_KEY
        job = client.submit("prompt.generate", {"manual_prompt": "Explain DNS"})
        for event in client.events(job.id):      # stored, then live; output as it is written
            ...
        job = client.wait(job.id, timeout=120)   # the terminal job

One implementation, two clients. Everything a call decides (the request, how to read the
answer, what to retry and when, how to resume a stream, when to poll) is written once in
`protocol` as a generator that yields instructions ("send this", "open this stream", "next
event", "sleep", "hand this to the caller") and receives their outcomes; it does no I/O.
`Client` carries the instructions out with `httpx.Client`, `AsyncClient` with
`httpx.AsyncClient`. The two drivers are a few dozen lines each and hold no logic, so the
clients cannot drift apart, and neither hides an event loop in a thread.

Retries (`max_retries`, exponential backoff with jitter):
- reads (`get`, `list`, `events`, `wait`, `kinds`, `result`, `me`) and `submit` are retried
  on `503` and on connection errors, even when the request may have arrived, because they
  cannot act twice: `submit` always sends an `Idempotency-Key` (a new UUID unless you pass
  one), so a retry after a lost answer gets the job the first attempt made;
- `cancel`, `retry` and rotating the webhook secret are retried only when the connection
  could not be made at all (the request never left);
- a `429` waits for `Retry-After` and tries again, for any call (nothing was done).

Errors:

    ApiError               status, code, message, details (the API's error shape)
     └── ApiConnectionError    no answer: status None, code `connection_error` or `timeout`
    WaitTimeout            `wait(id, timeout)` ran out of time (a TimeoutError)
"""

from jobrelay.client.async_client import AsyncClient
from jobrelay.client.errors import ApiConnectionError, ApiError, WaitTimeout
from jobrelay.client.models import Event, Job, JobError, Kind, Page, User
from jobrelay.client.sync import Client

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "AsyncClient",
    "Client",
    "Event",
    "Job",
    "JobError",
    "Kind",
    "Page",
    "User",
    "WaitTimeout",
]
