"""Prometheus metrics at `GET /metrics`.

Two kinds of series, because the work is spread over many processes:

- Per process (this API process's own registry): HTTP requests by method, route template and
  status, with a latency histogram by method and route; plus the client library's process and
  runtime metrics. Scrape every API instance; `sum` across instances as usual.
- Cluster-wide (the same on every API instance): jobs submitted by kind, jobs finished by kind
  and status, job run time by kind and status, webhook attempts by outcome, callbacks by outcome.
  Workers and API processes count these in Redis after each commit (`jobrelay.stats.counters`),
  so work done in a worker shows here without scraping workers. Gauges read at scrape time: jobs
  queued and processing (PostgreSQL), the ARQ queue length (Redis). Aggregate these with `max`,
  not `sum`, when several API instances are scraped; `jobrelay_metrics_source_up` says whether
  Redis and PostgreSQL answered the scrape.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobrelay.db import maintenance as maintenance_db
from jobrelay.db import stats as stats_db
from jobrelay.kinds import load_kinds
from jobrelay.route_table import api_router
from jobrelay.services import Services
from jobrelay.stats import counters
from jobrelay.stats.counters import DURATION_BUCKETS, Snapshot

logger = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "jobrelay_http_requests",
    "HTTP requests answered by this API process, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "jobrelay_http_request_duration_seconds",
    "Time from request to the end of the response, by method and route template.",
    ["method", "route"],
)
CALLBACK_ROUTES = frozenset({"/v1/callbacks/{job_id}", "/api/ai/receive/"})
UNMATCHED = "unmatched"
_SOURCE_TIMEOUT = 3.0
_KEPT_BODY = 4096

router = api_router(tags=["health"])


class MetricsMiddleware:
    """Counts and times every HTTP request under its route template (never the raw path, which
    would make a series per job id); for callback routes, also counts the outcome."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        body = bytearray()

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif _keeps_body(scope, message, len(body)):
                body.extend(message.get("body", b"")[:_KEPT_BODY])
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            route = _route(scope)
            method = str(scope.get("method", ""))
            requests, latency = _series(method, route, status)
            requests.inc()
            latency.observe(time.perf_counter() - started)
            if route in CALLBACK_ROUTES and method == "POST":
                await _count_callback(scope, status, bytes(body))


_SERIES: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def _series(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    """The request's counter and histogram children, looked up once per label set:
    `labels()` checks and joins its arguments on every call (~2 µs a request for the two)."""
    key = (method, route, status)
    found = _SERIES.get(key)
    if found is None:
        found = _SERIES[key] = (
            HTTP_REQUESTS.labels(method, route, str(status)),
            HTTP_LATENCY.labels(method, route),
        )
    return found


def _keeps_body(scope: Scope, message: Message, kept: int) -> bool:
    """Callback answers are kept (briefly, the first few KiB) to learn their outcome."""
    return (
        message["type"] == "http.response.body"
        and kept < _KEPT_BODY
        and _route(scope) in CALLBACK_ROUTES
    )


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def callback_outcome(status: int, body: bytes) -> str:
    """`applied`, `replayed`, or the error code the callback was refused with."""
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    if status < 400:
        return "replayed" if parsed.get("replayed") else "applied"
    error = parsed.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) and code.isidentifier() else f"http_{status}"


async def _count_callback(scope: Scope, status: int, body: bytes) -> None:
    app = scope.get("app")
    services: Services | None = getattr(getattr(app, "state", None), "services", None)
    if services is not None:
        await counters.count_callback(services.redis, callback_outcome(status, body))


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _counter_families(snapshot: Snapshot) -> list[Metric]:
    submitted = CounterMetricFamily(
        "jobrelay_jobs_submitted", "Jobs accepted, by kind (cluster-wide).", labels=["kind"]
    )
    for kind, value in sorted(snapshot.submitted.items()):
        submitted.add_metric([kind], value)
    finished = CounterMetricFamily(
        "jobrelay_jobs_finished",
        "Jobs that reached a terminal status, by kind and status (cluster-wide).",
        labels=["kind", "status"],
    )
    for (kind, status), value in sorted(snapshot.finished.items()):
        finished.add_metric([kind, status], value)
    duration = HistogramMetricFamily(
        "jobrelay_job_duration_seconds",
        "Run time of finished jobs (completed_at - started_at), by kind and status (cluster-wide).",
        labels=["kind", "status"],
    )
    for labels, per_bucket in sorted(snapshot.duration_buckets.items()):
        cumulative, buckets = 0, []
        for bound in DURATION_BUCKETS:
            key = counters.bound_label(bound)
            cumulative += per_bucket.get(key, 0)
            buckets.append((key, float(cumulative)))
        duration.add_metric(list(labels), buckets, snapshot.duration_sums.get(labels, 0.0))
    webhooks = CounterMetricFamily(
        "jobrelay_webhook_deliveries",
        "Outgoing webhook attempts, by outcome (cluster-wide).",
        labels=["outcome"],
    )
    for outcome, value in sorted(snapshot.webhooks.items()):
        webhooks.add_metric([outcome], value)
    callbacks = CounterMetricFamily(
        "jobrelay_callbacks",
        "Generator callbacks received, by outcome: applied, replayed, or the refusal's error "
        "code (cluster-wide).",
        labels=["outcome"],
    )
    for outcome, value in sorted(snapshot.callbacks.items()):
        callbacks.add_metric([outcome], value)
    return [submitted, finished, duration, webhooks, callbacks]


def _gauge_families(active: Iterable[Any], arq_lengths: dict[str, int] | None) -> list[Metric]:
    rows = list(active)
    kinds = load_kinds()
    depth = GaugeMetricFamily(
        "jobrelay_queue_depth",
        "Jobs waiting to start (status queued) per queue, from PostgreSQL.",
        labels=["queue"],
    )
    waiting = dict.fromkeys(kinds.queues(), 0)
    for row in rows:
        if row.status == "queued":
            queue = kinds.queue_of(row.kind)
            waiting[queue] = waiting.get(queue, 0) + int(row.count)
    for queue, count in sorted(waiting.items()):
        depth.add_metric([queue], count)
    by_kind = GaugeMetricFamily(
        "jobrelay_jobs_active",
        "Jobs queued or processing, by kind and status, from PostgreSQL.",
        labels=["kind", "status"],
    )
    for row in sorted(rows, key=lambda r: (r.kind, r.status)):
        by_kind.add_metric([row.kind, row.status], int(row.count))
    families: list[Metric] = [depth, by_kind]
    if arq_lengths is not None:
        length = GaugeMetricFamily(
            "jobrelay_arq_queue_length",
            "Entries in each ARQ queue in Redis: jobs and helper tasks, deferred ones included.",
            labels=["queue"],
        )
        for queue, count in sorted(arq_lengths.items()):
            length.add_metric([queue], count)
        families.append(length)
    return families


def _generator_families(check: Any) -> list[Metric]:
    """The generator's last periodic health check (run by a worker), when there was one."""
    if check is None:
        return []
    up = GaugeMetricFamily(
        "jobrelay_generator_up", "Whether the generator's /health answered at the last check."
    )
    up.add_metric([], 1 if check.ok else 0)
    age = GaugeMetricFamily(
        "jobrelay_generator_check_age_seconds", "Seconds since the generator was last checked."
    )
    age.add_metric([], float(check.age_seconds))
    return [up, age]


async def cluster_families(services: Services) -> list[Metric]:
    up = GaugeMetricFamily(
        "jobrelay_metrics_source_up",
        "Whether a source of the cluster-wide series answered this scrape.",
        labels=["source"],
    )
    families: list[Metric] = []
    arq_lengths: dict[str, int] | None = None
    try:
        async with asyncio.timeout(_SOURCE_TIMEOUT):
            snapshot = await counters.read(services.redis)
            arq_lengths = await services.queue.depths(load_kinds().queues())
        families += _counter_families(snapshot)
        up.add_metric(["redis"], 1)
    except Exception as exc:
        logger.warning("metrics: Redis did not answer: %s", exc)
        up.add_metric(["redis"], 0)
    try:
        async with asyncio.timeout(_SOURCE_TIMEOUT):
            async with services.engine.connect() as conn:
                active = await stats_db.count_by_kind_status(conn, statuses=stats_db.ACTIVE)
                generator = await maintenance_db.get_check(conn, maintenance_db.GENERATOR_CHECK)
        families += _gauge_families(active, arq_lengths)
        families += _generator_families(generator)
        up.add_metric(["postgres"], 1)
    except Exception as exc:
        logger.warning("metrics: PostgreSQL did not answer: %s", exc)
        up.add_metric(["postgres"], 0)
    return [*families, up]


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(await cluster_families(services)))
    text = generate_latest(REGISTRY) + generate_latest(registry)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
