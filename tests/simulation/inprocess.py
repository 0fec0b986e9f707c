"""A world folded in process, through the same code the server runs, without a database.

1. Ingest: each delivery goes through the real ``import_lines`` and ``Ingestor`` of
   ``ingest/webhooks.py`` (the import line format, authentication, adapters, the dedup
   key and whatever the Ingestor decides about copies), with ``MemoryStore`` standing in
   for PostgreSQL: ``append_independent`` and ``get`` mirror ``ingest/store.py`` (an
   idempotency key already stored answers ``duplicate`` with the first append's position
   and stores nothing). Anything else the Ingestor asks of the store fails loudly.
2. Project: the log, in order, through ``Projection.apply`` in the projector's batch
   size, taking the engine's changes after each batch as ``project_batch`` does; every
   changed incident is kept by id, as the read model's upsert keeps it (an incident the
   engine forgot keeps its last written row).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

import asyncpg

from hindsight.app import credentials, engine_config_from
from hindsight.settings import Settings
from ingest.group_commit import GroupCommitter
from ingest.store import Appended, EventStore, NewEvent, RecordedEvent
from ingest.webhooks import Ingestor, IngestSettings, import_lines
from projections.model import Incident
from projections.projection import Pending, Projection
from tests.helpers import settings_for_tests
from tests.scenarios.payloads import Recorded

BATCH = 1000  # the live projector's read size (EventStore.follow's limit)


class MemoryStore(EventStore):
    """The event log in a list: one transaction per append call, positions from 1."""

    def __init__(self) -> None:
        # No pool: a method this class does not override fails instead of faking it.
        super().__init__(cast(asyncpg.Pool, None), notify=False)
        self.events: list[RecordedEvent] = []
        self.keys: dict[str, int] = {}

    async def append_independent(self, events: Sequence[NewEvent]) -> list[Appended]:
        out: list[Appended] = []
        transaction = len(self.events) + 1
        for event in events:
            first = self.keys.get(event.idempotency_key or "")
            if first is not None:  # ON CONFLICT (idempotency_key) DO NOTHING
                stored = self.events[first - 1]
                out.append(Appended(first, stored.stream, stored.stream_version, True))
                continue
            position = len(self.events) + 1
            self.events.append(RecordedEvent(
                position=position, transaction_id=transaction, stream=event.stream,
                stream_version=1, type=event.type, data=event.data, metadata=event.metadata,
                body=event.body, idempotency_key=event.idempotency_key,
                occurred_at=event.occurred_at, received_at=event.received_at,
                recorded_at=datetime.now(UTC)))
            if event.idempotency_key:
                self.keys[event.idempotency_key] = position
            out.append(Appended(position, event.stream, 1, False))
        return out

    async def append(self, stream: str, events: Sequence[NewEvent], *,
                     expected_version: int | None = None) -> list[Appended]:
        # Only deliveries are simulated; every one opens a stream of its own.
        if any(e.stream != stream for e in events):
            raise ValueError("every event must belong to the stream appended to")
        return await self.append_independent(events)

    async def get(self, position: int) -> RecordedEvent | None:
        return self.events[position - 1] if 0 < position <= len(self.events) else None


class MemoryCommitter(GroupCommitter):
    """Commits each event at once, in call order: the log's order is the import's."""

    def __init__(self, store: MemoryStore) -> None:
        super().__init__(store)

    async def append(self, event: NewEvent) -> Appended:
        [appended] = await self.store.append_independent([event])
        return appended


async def ingest(settings: Settings, deliveries: Sequence[Recorded]) -> MemoryStore:
    """Import ``deliveries`` in the given order; every one must be accepted."""
    store = MemoryStore()
    ingestor = Ingestor(MemoryCommitter(store), IngestSettings(
        credentials=credentials(settings), max_body_bytes=settings.max_body_bytes,
        tolerance_seconds=settings.signature_tolerance_seconds))
    results = await import_lines(ingestor, [d.line() for d in deliveries])
    refused = [(d.source, r) for d, r in zip(deliveries, results, strict=True)
               if r["status"] >= 300]
    if refused:
        raise AssertionError(f"deliveries were refused: {refused[:3]}")
    return store


def project(settings: Settings, events: Sequence[RecordedEvent]) -> dict[str, Incident]:
    """The incidents read model after folding ``events``: id -> last written value."""
    projection = Projection(engine_config_from(settings))
    rows: dict[str, Incident] = {}
    for start in range(0, len(events), BATCH):
        projection.apply(events[start:start + BATCH], Pending())
        changes = projection.engine.take_changes()
        for incident in (*changes.incidents, *changes.merged):
            rows[incident.id] = incident
    return rows


def fold(deliveries: Sequence[Recorded], settings: Settings) -> dict[str, list[Incident]]:
    """Per service, its incidents (not merged away) as the read model would hold them."""
    store = asyncio.run(ingest(settings, deliveries))
    by_service: dict[str, list[Incident]] = {}
    for incident in project(settings, store.events).values():
        if incident.merged_into is None:
            by_service.setdefault(incident.service, []).append(incident)
    return by_service


def settings_for(services: dict[str, list[str]], **overrides: object) -> Settings:
    """Test credentials, the worlds' ``[services]`` and the default reopen window (the
    oracle's assumption: outages are far more than 15 min apart)."""
    return settings_for_tests(services=services, **overrides)
