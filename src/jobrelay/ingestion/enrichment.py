"""The enrichment step between batches: the external API the original system called for every
100 records. It is awaited, never slept in a thread or blocking call, so one worker interleaves
many ingestion jobs while each of them waits on it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from jobrelay.config import Settings
from jobrelay.ingestion.schemas import StudentRecord


class Enricher(Protocol):
    async def enrich(self, records: Sequence[StudentRecord]) -> Sequence[StudentRecord]: ...


class SimulatedEnrichment:
    """Stands in for the external API: takes `delay` seconds per call and changes nothing."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def enrich(self, records: Sequence[StudentRecord]) -> Sequence[StudentRecord]:
        if self.delay:
            await asyncio.sleep(self.delay)
        return records


def make_enricher(settings: Settings) -> Enricher:
    return SimulatedEnrichment(settings.ingest_delay_per_100)
