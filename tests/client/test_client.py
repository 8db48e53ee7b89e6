"""`jobrelay.Client` against the real API and worker: every method, and how errors map."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

import jobrelay
from jobrelay.client import ApiConnectionError, Kind, Page, User, WaitTimeout
from jobrelay.embedded import free_tcp_port
from tests.client.conftest import NewUser
from tests.conftest import Stack

PROMPT = "prompt.generate"


def test_exports_are_sorted_and_complete() -> None:
    assert jobrelay.__all__ == sorted(jobrelay.__all__)
    for name in ("Client", "AsyncClient", "ApiError", "Job", "Event"):
        assert name in jobrelay.__all__
        assert getattr(jobrelay, name) is not None


def test_submit_get_wait_result(stack: Stack, new_user: NewUser) -> None:
    with jobrelay.Client(stack.api_url, new_user()) as client:
        job = client.submit(
            PROMPT,
            {"manual_prompt": "Explain tides"},
            metadata={"ticket": "JR-1"},
            webhook_events_filter=["completed"],
        )
        assert isinstance(job, jobrelay.Job)
        assert job.kind == PROMPT
        assert job.status == "queued"
        assert job.input == {"manual_prompt": "Explain tides"}
        assert job.metadata == {"ticket": "JR-1"}
        assert job.urls["self"] == f"/v1/jobs/{job.id}"
        assert not job.replayed
        assert job.created_at is not None and job.created_at.tzinfo is not None

        done = client.wait(job.id, timeout=30)
        assert done.done and done.status == "completed"
        assert done.progress == 100
        assert done.result is not None and "Explain tides" in done.result["prompt"]
        assert done.duration_seconds is not None

        again = client.get(job.id)
        assert again == done
        assert again.to_dict()["id"] == job.id
        assert client.result(job.id) == done.result


def test_env_fallbacks(stack: Stack, new_user: NewUser, monkeypatch: pytest.MonkeyPatch) -> None:
    key = new_user()
    monkeypatch.setenv("JOBRELAY_API_URL", stack.api_url)
    monkeypatch.setenv("JOBRELAY_API_KEY", key)
    with jobrelay.Client() as client:
        assert client.base_url == stack.api_url
        assert client.me().role == "user"
    monkeypatch.delenv("JOBRELAY_API_KEY")
    with pytest.raises(ValueError, match="JOBRELAY_API_KEY"):
        jobrelay.Client(stack.api_url)


def test_idempotency_key_given_by_the_caller(stack: Stack, new_user: NewUser) -> None:
    key = f"client-{uuid.uuid4()}"
    with jobrelay.Client(stack.api_url, new_user()) as client:
        first = client.submit(PROMPT, {"manual_prompt": "once"}, idempotency_key=key)
        second = client.submit(PROMPT, {"manual_prompt": "once"}, idempotency_key=key)
        assert second.id == first.id
        assert not first.replayed and second.replayed
        with pytest.raises(jobrelay.ApiError) as caught:
            client.submit(PROMPT, {"manual_prompt": "other"}, idempotency_key=key)
        assert caught.value.status == 422
        assert caught.value.code == "idempotency_key_reused"


def test_events_stream_the_whole_job(slow_stack: Stack) -> None:
    from tests.client.conftest import create_user

    with jobrelay.Client(slow_stack.api_url, create_user(slow_stack)) as client:
        job = client.submit(PROMPT, {"manual_prompt": "Stream me"})
        seen = list(client.events(job.id))
        assert all(isinstance(event, jobrelay.Event) for event in seen)
        stored = [event for event in seen if not event.is_output]
        assert [event.progress for event in stored] == [0, 10, 30, 50, 70, 90, 100]
        assert stored[0].type == "status" and stored[-1].status == "completed"
        assert stored[-1].ends_job
        ids = [event.id for event in stored if event.id is not None]
        assert len(ids) == len(stored) and ids == sorted(set(ids))
        assert all(event.job_id == job.id for event in stored)
        assert client.stored_events(job.id) == stored

        after = list(client.events(job.id, last_event_id=ids[3]))
        assert [event.id for event in after if not event.is_output] == ids[4:]
        assert [e.id for e in client.stored_events(job.id, last_event_id=ids[3])] == ids[4:]


def test_wait_reports_each_update_and_times_out(slow_stack: Stack) -> None:
    from tests.client.conftest import create_user

    with jobrelay.Client(slow_stack.api_url, create_user(slow_stack)) as client:
        job = client.submit(PROMPT, {"manual_prompt": "Patience"})
        started = time.monotonic()
        with pytest.raises(WaitTimeout) as caught:
            client.wait(job.id, timeout=0.3)
        assert time.monotonic() - started < 5
        assert isinstance(caught.value, TimeoutError)
        assert caught.value.job.id == job.id and not caught.value.job.done

        updates: list[jobrelay.Job | jobrelay.Event] = []
        done = client.wait(job.id, timeout=30, on_update=updates.append)
        assert done.status == "completed"
        assert updates and updates[-1].status == "completed"
        progress = [u.progress for u in updates if u.progress is not None]
        assert progress == sorted(progress)


def test_cancel_and_retry(slow_stack: Stack) -> None:
    from tests.client.conftest import create_user

    with jobrelay.Client(slow_stack.api_url, create_user(slow_stack)) as client:
        job = client.submit(PROMPT, {"manual_prompt": "Cancel me"})
        canceled = client.cancel(job.id)
        assert canceled.status == "canceled"
        with pytest.raises(jobrelay.ApiError) as caught:
            client.cancel(job.id)
        assert caught.value.status == 409
        assert caught.value.code in str(caught.value)

        retried = client.retry(job.id)
        assert retried.status == "queued"
        assert client.wait(job.id, timeout=30).status == "completed"
        with pytest.raises(jobrelay.ApiError) as again:
            client.retry(job.id)
        assert again.value.status == 409


def test_list_iterates_across_pages(stack: Stack, new_user: NewUser) -> None:
    with jobrelay.Client(stack.api_url, new_user()) as client:
        ids = [client.submit(PROMPT, {"manual_prompt": f"page {n}"}).id for n in range(5)]
        listed = list(client.list(page_size=2))
        assert [job.id for job in listed] == list(reversed(ids))
        assert [job.id for job in client.list(kind=PROMPT, page_size=3)] == list(reversed(ids))
        assert list(client.list(kind="records.ingest")) == []

        for job_id in ids:
            client.wait(job_id, timeout=30)
        assert len(list(client.list(status="completed", page_size=2))) == 5

        page = client.list_page(limit=2)
        assert isinstance(page, Page)
        assert len(page.items) == 2 and page.next_cursor
        rest = client.list_page(limit=10, cursor=page.next_cursor)
        assert [job.id for job in page.items + rest.items] == list(reversed(ids))
        assert rest.next_cursor is None
        assert page.to_dict()["next_cursor"] == page.next_cursor


def test_me_and_webhook_secret(stack: Stack, new_user: NewUser) -> None:
    with jobrelay.Client(stack.api_url, new_user(tokens=4321)) as client:
        me = client.me()
        assert isinstance(me, User)
        assert me.tokens == 4321 and me.role == "user"
        secret = client.webhook_secret()
        assert secret.startswith("whsec_")
        rotated = client.webhook_secret(rotate=True)
        assert rotated.startswith("whsec_") and rotated != secret
        assert client.webhook_secret() == rotated


def test_kinds_lists_every_kind_with_its_schema(stack: Stack, new_user: NewUser) -> None:
    with jobrelay.Client(stack.api_url, new_user()) as client:
        kinds = {item.name: item for item in client.kinds()}
    assert {"prompt.generate", "quiz.generate", "records.ingest"} <= set(kinds)
    prompt = kinds["prompt.generate"]
    assert isinstance(prompt, Kind)
    assert prompt.queue == "default"
    assert "manual_prompt" in prompt.input_schema["properties"]
    assert isinstance(prompt.deadline_seconds, int) and prompt.deadline_seconds > 0
    assert prompt.to_dict()["name"] == "prompt.generate"


def test_errors_carry_the_error_shape(stack: Stack, new_user: NewUser) -> None:
    with jobrelay.Client(stack.api_url, new_user()) as client:
        missing = str(uuid.uuid4())
        with pytest.raises(jobrelay.ApiError) as not_found:
            client.get(missing)
        assert not_found.value.status == 404
        assert not_found.value.code == "job_not_found"
        assert "job_not_found" in str(not_found.value)
        assert not_found.value.message

        with pytest.raises(jobrelay.ApiError) as invalid:
            client.submit(PROMPT, {"manual_prompt": "x", "unexpected": 1})
        assert invalid.value.status == 422
        assert invalid.value.details, "a 422 says which fields were wrong"

        with pytest.raises(jobrelay.ApiError) as unknown:
            client.submit("no.such.kind", {})
        assert unknown.value.status == 422

        with pytest.raises(jobrelay.ApiError) as not_yet:
            job = client.submit(PROMPT, {"manual_prompt": "not yet"})
            client.cancel(job.id)
            client.result(job.id)
        assert not_yet.value.status == 409

    with jobrelay.Client(stack.api_url, "not-a-key") as stranger:
        with pytest.raises(jobrelay.ApiError) as unauthorized:
            stranger.me()
        assert unauthorized.value.status == 401


def test_another_users_job_is_not_found(stack: Stack, new_user: NewUser) -> None:
    with (
        jobrelay.Client(stack.api_url, new_user()) as owner,
        jobrelay.Client(stack.api_url, new_user()) as other,
    ):
        job = owner.submit(PROMPT, {"manual_prompt": "mine"})
        for call in (other.get, other.cancel, other.retry, other.wait):
            with pytest.raises(jobrelay.ApiError) as caught:
                call(job.id)
            assert caught.value.status == 404
        with pytest.raises(jobrelay.ApiError) as streamed:
            list(other.events(job.id))
        assert streamed.value.status == 404


def test_unreachable_service_is_a_connection_error() -> None:
    url = f"http://127.0.0.1:{free_tcp_port()}"
    with jobrelay.Client(url, "key", max_retries=2) as client:
        started = time.monotonic()
        with pytest.raises(ApiConnectionError) as caught:
            client.get(str(uuid.uuid4()))
        assert time.monotonic() - started < 10
    error = caught.value
    assert isinstance(error, jobrelay.ApiError)
    assert error.status is None
    assert error.code == "connection_error"
    assert error.message.startswith(f"cannot reach jobrelay at {url}")
    assert "connection_error" in str(error)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="API URL"):
        jobrelay.Client("localhost:8000", "key")


def test_the_readme_example_runs(
    stack: Stack, new_user: NewUser, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Call jobrelay from Python", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "http://127.0.0.1:8000" in example
    code = example.replace("http://127.0.0.1:8000", stack.api_url)
    exec(compile(code, "README.md", "exec"), {"api_key": new_user()})
    printed = capsys.readouterr().out
    assert "[completed 100%] Prompt generated successfully" in printed
    assert "Explain photosynthesis to a 10 year old" in printed


def test_a_last_event_id_past_every_id_is_refused(stack: Stack, new_user: NewUser) -> None:
    with jobrelay.Client(stack.api_url, new_user()) as client:
        job = client.submit(PROMPT, {"manual_prompt": "far ahead"})
        client.wait(job.id, timeout=30)
        with pytest.raises(jobrelay.ApiError) as listed:
            client.stored_events(job.id, last_event_id=10**19)
        with pytest.raises(jobrelay.ApiError) as streamed:
            list(client.events(job.id, last_event_id=10**19))
    for caught in (listed, streamed):
        assert caught.value.status == 422
        assert caught.value.code == "invalid_last_event_id"
