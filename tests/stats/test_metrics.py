"""`GET /metrics`: valid Prometheus text, and counters that move when jobs run, webhooks are
sent and callbacks arrive, whichever process did the work."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import MakeUser
from tests.support.jobs import prompt_input, submit, wait_for_status
from tests.webhooks.receiver import running_receiver

FAMILIES = {
    "jobrelay_http_requests": "counter",
    "jobrelay_http_request_duration_seconds": "histogram",
    "jobrelay_jobs_submitted": "counter",
    "jobrelay_jobs_finished": "counter",
    "jobrelay_job_duration_seconds": "histogram",
    "jobrelay_webhook_deliveries": "counter",
    "jobrelay_callbacks": "counter",
    "jobrelay_queue_depth": "gauge",
    "jobrelay_jobs_active": "gauge",
    "jobrelay_arq_queue_length": "gauge",
    "jobrelay_metrics_source_up": "gauge",
}


class Scrape:
    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}

    def value(self, sample_name: str, **labels: str) -> float:
        """The sum of the samples named `sample_name` whose labels include `labels`."""
        return sum(
            sample.value
            for family in self.families.values()
            for sample in family.samples
            if sample.name == sample_name and labels.items() <= sample.labels.items()
        )

    def labels_of(self, sample_name: str) -> list[dict[str, str]]:
        return [
            dict(sample.labels)
            for family in self.families.values()
            for sample in family.samples
            if sample.name == sample_name
        ]


async def scrape(client: httpx.AsyncClient) -> Scrape:
    response = await client.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


async def test_metrics_parse_with_every_family(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    metrics = await scrape(client)
    for name, kind in FAMILIES.items():
        assert name in metrics.families, name
        assert metrics.families[name].type == kind, name
    assert metrics.value("jobrelay_metrics_source_up", source="redis") == 1
    assert metrics.value("jobrelay_metrics_source_up", source="postgres") == 1
    assert "process_cpu_seconds" in metrics.families


async def test_job_counters_move_when_a_job_runs(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    before = await scrape(client)
    job = await submit(user.client, "prompt.generate", prompt_input())
    await wait_for_status(user.client, job["id"], "completed")
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("jobrelay_jobs_submitted_total", kind="prompt.generate") >= 1
    assert moved("jobrelay_jobs_finished_total", kind="prompt.generate", status="completed") >= 1
    labels = {"kind": "prompt.generate", "status": "completed"}
    assert moved("jobrelay_job_duration_seconds_count", **labels) >= 1
    assert moved("jobrelay_job_duration_seconds_bucket", le="+Inf", **labels) >= 1
    buckets = sorted(
        (float(sample.labels["le"]), sample.value)
        for sample in after.families["jobrelay_job_duration_seconds"].samples
        if sample.name.endswith("_bucket") and labels.items() <= sample.labels.items()
    )
    counts = [count for _, count in buckets]
    assert counts == sorted(counts), "buckets are cumulative"
    assert counts[-1] == after.value("jobrelay_job_duration_seconds_count", **labels)
    assert after.value("jobrelay_job_duration_seconds_sum", **labels) >= 0
    route = {"method": "POST", "route": "/v1/jobs", "status": "202"}
    assert moved("jobrelay_http_requests_total", **route) == 1
    assert (
        moved("jobrelay_http_request_duration_seconds_count", method="POST", route="/v1/jobs") == 1
    )


async def test_http_series_use_route_templates(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    job = await submit(user.client, "prompt.generate", prompt_input())
    await user.client.get(f"/v1/jobs/{job['id']}")
    await user.client.get(f"/v1/jobs/{uuid.uuid4()}")
    await user.client.get("/no/such/path")
    metrics = await scrape(client)
    routes = {labels["route"] for labels in metrics.labels_of("jobrelay_http_requests_total")}
    assert "/v1/jobs/{job_id}" in routes
    assert "unmatched" in routes
    assert not any(job["id"] in route for route in routes)
    assert (
        metrics.value(
            "jobrelay_http_requests_total", method="GET", route="/v1/jobs/{job_id}", status="404"
        )
        >= 1
    )


async def test_webhook_delivery_counter_moves(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    with running_receiver() as receiver:
        receiver.script("/m", 500)
        before = await scrape(client)
        await submit(user.client, "prompt.generate", prompt_input(), webhook=f"{receiver.url}/m")
        await receiver.wait_for("/m", 2)
    after = await scrape(client)
    for outcome in ("failed", "delivered"):
        name = "jobrelay_webhook_deliveries_total"
        assert after.value(name, outcome=outcome) - before.value(name, outcome=outcome) >= 1


async def test_callback_counter_counts_by_outcome(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    refused = await client.post(
        f"/v1/callbacks/{uuid.uuid4()}",
        content=b'{"status": "processing", "progress": 10}',
        headers={"content-type": "application/json", "Authorization": ""},
    )
    assert refused.status_code in (401, 404), refused.text
    code = refused.json()["error"]["code"]
    after = await scrape(client)
    name = "jobrelay_callbacks_total"
    assert after.value(name, outcome=code) - before.value(name, outcome=code) == 1


async def test_queue_gauges(make_user: MakeUser, spawn_stack: Any) -> None:
    idle = await spawn_stack(workers=0)
    user = await make_user(on=idle)
    for _ in range(3):
        await submit(user.client, "prompt.generate", prompt_input())
    async with httpx.AsyncClient(base_url=idle.api_url) as anonymous:
        metrics = await scrape(anonymous)
    assert metrics.value("jobrelay_queue_depth") == 3
    assert metrics.value("jobrelay_jobs_active", kind="prompt.generate", status="queued") == 3
    assert metrics.value("jobrelay_arq_queue_length") >= 3
    assert metrics.value("jobrelay_jobs_submitted_total", kind="prompt.generate") == 3
