"""A world folded in process, through the same code the server runs, without a database.

1. Ingest: each delivery goes through the real ``import_lines`` and ``Ingestor`` of
   ``ingest/webhooks.py`` (the import line format, authentication, adapters, the dedup
   key and whatever the Ingestor decides about copies), with ``MemoryStore`` standing in
   for PostgreSQL: ``append_independent`` and ``get`` mirror ``ingest/store.py`` (an
   event whose idempotency key is stored, or whose ``dedup_window`` meets a stored copy's
   (the ``events_dedup_window`` exclusion constraint), is not stored and answers
   ``duplicate`` with that copy's position). Anything else the Ingestor asks of the
   store fails loudly.
2. Project: the log, in order, through ``Projection.apply`` in the projector's batch
   size (with the stored deliveries that ``delivery.copy`` events repeat), taking the engine's changes after each batch as ``project_batch`` does; every
   changed incident is kept by id, as the read model's upsert keeps it (an incident the
   engine forgot keeps its last written row).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import cast

import asyncpg

from hindsight.app import credentials, engine_config_from
from hindsight.settings import Settings
from ingest.group_commit import GroupCommitter
from ingest.store import Appended, EventStore, NewEvent, RecordedEvent
from ingest.webhooks import Ingestor, IngestSettings, import_lines
from projections.engine.model import Incident
from projections.runtime.projection import Pending, Projection
from tests.helpers import settings_for_tests
from tests.scenarios.payloads import Recorded

# Answers that mean the simulation sent something no tool would (a wrong credential, a
# source not enabled, a body too big). An adapter's verdict (400, 415, 422) is not one of
# them: the delivery is stored, and the oracle judges what it cost.
HARNESS_FAULTS = frozenset({401, 404, 413})
COPY = "delivery.copy"  # another receipt of a stored delivery (ingest/webhooks.py)
BATCH = 1000  # the live projector's read size (EventStore.follow's limit)


class MemoryStore(EventStore):
    """The event log in a list: one transaction per append call, positions from 1."""

    def __init__(self) -> None:
        # No pool: a method this class does not override fails instead of faking it.
        super().__init__(cast(asyncpg.Pool, None), notify=False)
        self.events: list[RecordedEvent] = []
        self.keys: dict[str, int] = {}  # idempotency key -> position
        self.windows: dict[str, list[int]] = {}  # dedup identity -> positions

    async def append_independent(self, events: Sequence[NewEvent]) -> list[Appended]:
        out: list[Appended] = []
        transaction = len(self.events) + 1
        for event in events:
            first = self.first_copy(event)
            if first is not None:  # ON CONFLICT DO NOTHING: the key, or the retry window
                out.append(Appended(first.position, first.stream, first.stream_version, True))
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
            window = getattr(event, "dedup_window", None)
            if window is not None:
                self.windows.setdefault(window.identity, []).append(position)
            out.append(Appended(position, event.stream, 1, False))
        return out

    def first_copy(self, event: NewEvent) -> RecordedEvent | None:
        """The stored event ``event`` repeats, as ``_FIND_FIRST`` picks it: the one
        holding its key; else, of the same identity (source and bytes), the one nearest
        in receipt among those less than the window apart (earlier first on a tie)."""
        held = self.keys.get(event.idempotency_key or "")
        if held is not None:
            return self.events[held - 1]
        window = getattr(event, "dedup_window", None)
        if window is None:
            return None
        # The exclusion constraint works in whole microseconds (DedupWindow.span).
        reach = timedelta(microseconds=2 * round(window.seconds * 500_000))
        near = [self.events[p - 1] for p in self.windows.get(window.identity, [])
                if abs(self.events[p - 1].received_at - event.received_at) < reach]
        return min(near, default=None, key=lambda e: (
            abs(e.received_at - event.received_at), e.received_at, e.position))

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
    """Import ``deliveries`` in the given order; every one must be authentic."""
    store = MemoryStore()
    ingestor = Ingestor(MemoryCommitter(store), IngestSettings(
        credentials=credentials(settings), max_body_bytes=settings.max_body_bytes,
        tolerance_seconds=settings.signature_tolerance_seconds,
        dedup_window_seconds=settings.dedup_window_seconds))
    results = await import_lines(ingestor, [d.line() for d in deliveries])
    refused = [(d.source, r) for d, r in zip(deliveries, results, strict=True)
               if r["status"] in HARNESS_FAULTS]
    if refused:
        raise AssertionError(f"deliveries were refused: {refused[:3]}")
    return store


def project(settings: Settings, events: Sequence[RecordedEvent]) -> dict[str, Incident]:
    """The incidents read model after folding ``events``: id -> last written value."""
    projection = Projection(engine_config_from(settings))
    rows: dict[str, Incident] = {}
    for start in range(0, len(events), BATCH):
        batch = events[start:start + BATCH]
        # As ``stored_firsts`` reads them: the stored delivery each copy repeats.
        firsts = {e.data["first"]: events[e.data["first"] - 1] for e in batch
                  if e.type == COPY}
        projection.apply(batch, Pending(), firsts)
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


_BASE: list[Settings] = []


def settings_for(services: dict[str, list[str]], **overrides: object) -> Settings:
    """Test credentials, the worlds' ``[services]`` and the default reopen window (the
    oracle's assumption: outages are far more than 15 min apart)."""
    if overrides:
        return settings_for_tests(services=services, **overrides)
    if not _BASE:  # loading settings costs more than folding a small world
        _BASE.append(settings_for_tests())
    return _BASE[0].model_copy(update={"services": services})
