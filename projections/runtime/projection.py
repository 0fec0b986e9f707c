"""The projection: events in, read-model rows out. The same code serves the live
projector, ``hindsight rebuild`` and "as of" answers, so they cannot disagree."""

from __future__ import annotations

import zlib
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import orjson

from ingest.action_items import ACTION_ITEM_EVENT_TYPES, parse_action_item_event
from ingest.delivery import Delivery
from ingest.manual import MANUAL_TYPES, IncidentDeclared, manual_event_from_json
from ingest.signals import Severity, Signal
from ingest.sources import is_current, signal_data, understand
from ingest.store import RecordedEvent, read_positions
from projections.engine import action_items as items
from projections.engine.codec import incident_summary
from projections.engine.facts import PENDING_EVENT, parse_time, pending_signal, signal_from_json
from projections.engine.fold import Changes, Engine, EngineConfig
from projections.engine.model import Incident
from projections.runtime import timeline_rows

DELIVERY = "delivery.received"
COPY = "delivery.copy"  # another receipt of a stored delivery (ingest/webhooks.py)
INCIDENT_STREAM = "incident-"


def engine_config(
    services: dict[str, list[str]] | None = None,
    default_severity: dict[str, Severity] | None = None,
    reopen_window: timedelta = timedelta(minutes=15),
    retention: timedelta = timedelta(days=30),
) -> EngineConfig:
    return EngineConfig(services=services or {}, default_severity=default_severity or {},
                        reopen_window=reopen_window, retention=retention)


@dataclass(frozen=True)
class Shard:
    """One of ``count`` shards of a rebuild: the services whose stable hash falls on
    ``index`` (signals never cross services; docs/architecture.md, "Sharded rebuild")."""

    index: int
    count: int

    def keeps(self, service: str) -> bool:
        return zlib.crc32(service.encode()) % self.count == self.index

    @property
    def first(self) -> bool:
        return self.index == 0


@dataclass
class Pending:
    """Rows a batch of events adds to the read models, written in one transaction."""

    deliveries: list[tuple[Any, ...]] = field(default_factory=list)
    items: dict[str, items.ActionItem] = field(default_factory=dict)
    events: int = 0


class Projection:
    def __init__(self, config: EngineConfig, shard: Shard | None = None) -> None:
        self.config = config
        self.engine = Engine(config)
        # A shard of a rebuild folds the signals of its services only; the first shard
        # also keeps what belongs to no service (the delivery log, action items).
        self.shard = shard
        self.keep = None if shard is None else shard.keeps
        self.items: dict[str, items.ActionItem] = {}
        # Services changed since the engine's state was last saved (see projector.py).
        self.unsaved: set[str] = set()
        # The timeline rows committed so far (the live projector writes deltas from it).
        self.written = timeline_rows.WrittenTimelines()
        self.events_unsaved = 0

    def apply(self, events: Sequence[RecordedEvent], pending: Pending,
              firsts: Mapping[int, RecordedEvent] | None = None) -> None:
        """Fold ``events``. ``firsts``: the stored delivery each ``delivery.copy`` among
        them repeats, by position (``stored_firsts`` reads them)."""
        for event in events:
            pending.events += 1
            if event.type == DELIVERY:
                self._delivery(event, pending)
            elif event.type == COPY:
                first = (firsts or {}).get(event.data["first"])
                if first is None:
                    raise LookupError(f"copy {event.position} repeats delivery "
                                      f"{event.data['first']}, which was not read with it")
                self._copy(event, first, pending)
            elif event.type in MANUAL_TYPES:
                incident_id = event.stream.removeprefix(INCIDENT_STREAM)
                manual = manual_event_from_json(event.type, event.data)
                if (self.keep is not None and isinstance(manual, IncidentDeclared)
                        and not self.keep(manual.service)):
                    continue  # declared in another shard's service; the rest reach
                    # every shard and change only the one holding the incident
                self.engine.apply_manual(event.position, event.recorded_at, manual,
                                         incident_id=incident_id)
            elif event.type in ACTION_ITEM_EVENT_TYPES:
                if self.shard is None or self.shard.first:
                    self.apply_item(event, pending)
            elif event.type == PENDING_EVENT:
                # What Prometheus said at receipt (TIMELINE.md rule 8): the alert's
                # signal, failing since its pending period began, received with its
                # delivery. Folded from the log: a rebuild never asks again.
                received = parse_time(event.data["delivery_received_at"])
                self.engine.apply_delivery(event.position, received,
                                           [pending_signal(event.data)])

    def apply_item(self, event: RecordedEvent, pending: Pending | None = None) -> None:
        parsed = parse_action_item_event({"type": event.type, **event.data})
        recorded = items.RecordedItemEvent(event.position, event.recorded_at, parsed)
        item_id = recorded.event.item_id
        after = items.apply(self.items.get(item_id), recorded)
        if after is not None:
            self.items[item_id] = after
            if pending is not None:
                pending.items[item_id] = after

    def _delivery(self, event: RecordedEvent, pending: Pending) -> None:
        source = event.data["source"]
        outcome, error, signals, encoded = self._understanding(event, event)
        self.engine.apply_delivery(event.position, event.received_at, signals, self.keep)
        if self.shard is not None and not self.shard.first:
            return
        services = sorted({self.engine.service_of(s) for s in signals})
        pending.deliveries.append((
            event.position, event.transaction_id, source, event.received_at,
            outcome, error, len(signals), services, encoded, None,
        ))

    def _understanding(self, first: RecordedEvent, receipt: RecordedEvent
                       ) -> tuple[str, str | None, Sequence[Signal], str]:
        """What the adapter makes of the stored delivery ``first`` as ``receipt`` (itself,
        or a copy) received it: outcome, error, signals and the signals' stored JSON.

        Parse once: the signals ingest stored with ``first`` when its adapter version is
        the current one (``ingest.sources.is_current``), else the adapter run again on the
        stored body (a delivery stored before parse-once, or one an older adapter read:
        fixing an adapter and rebuilding corrects history)."""
        source = first.data["source"]
        stored = first.data.get("parsed")
        if receipt is first and is_current(stored, source):
            return (stored["outcome"], stored.get("error"),
                    [signal_from_json(s) for s in stored["signals"]],
                    orjson.dumps(stored["signals"]).decode())
        delivery = Delivery(source=source, body=first.body or b"",
                            received_at=receipt.received_at,
                            headers=receipt.data.get("headers", {}))
        understood = understand(delivery)
        return (understood.outcome, understood.error, understood.signals,
                orjson.dumps([signal_data(s) for s in understood.signals]).decode())

    def _copy(self, event: RecordedEvent, first: RecordedEvent, pending: Pending) -> None:
        """Another receipt of the stored delivery ``first`` (TIMELINE.md rule 11: a
        duplicate changes nothing, except that detection takes the earliest receipt
        among the copies, whatever order they were imported in).

        A copy received before ``first`` folds the stored body again as received then:
        the adapter re-run with the copy's receipt and headers, its signals applied like
        a delivery's. The engine keeps the earlier notification (and, for a source timed
        by receipt, the earlier time) and counts the later one as a repeat. A copy
        received later folds nothing. Either way the delivery log lists it, pointing at
        ``first``, with the signals it folded (what an "as of" replay folds again).

        Parse once: a later copy with the same headers needs only what ``first``'s
        stored signals say apart from times (outcome, error, count, services; the seam
        promises those never depend on the receipt, ingest/sources/__init__.py), so it
        is not re-parsed. An earlier copy is: its receipt reaches times, summaries and
        attributes in adapter-specific ways (a receipt-timed state, an estimated expiry,
        a deadline in words) that only the adapter can recompute."""
        source = first.data["source"]
        headers = event.data.get("headers", {})
        earlier = event.received_at < first.received_at
        if earlier or headers != first.data.get("headers", {}):
            outcome, error, signals, _ = self._understanding(first, event)
        else:
            outcome, error, signals, _ = self._understanding(first, first)
        folded = signals if earlier else []
        if folded:
            self.engine.apply_delivery(event.position, event.received_at, folded, self.keep)
        if self.shard is not None and not self.shard.first:
            return
        services = sorted({self.engine.service_of(s) for s in signals})
        pending.deliveries.append((
            event.position, event.transaction_id, source, event.received_at,
            outcome, error, len(signals), services,
            orjson.dumps([signal_data(s) for s in folded]).decode(), first.position,
        ))


async def stored_firsts(conn: asyncpg.Connection, events: Sequence[RecordedEvent]
                        ) -> dict[int, RecordedEvent]:
    """The stored deliveries the copies among ``events`` repeat, by position: one
    indexed read, only for a batch that holds copies (a copy always follows its first
    in the log, so the first has been folded already)."""
    wanted = sorted({e.data["first"] for e in events if e.type == COPY})
    return {e.position: e for e in await read_positions(conn, wanted)} if wanted else {}


async def save_state(conn: asyncpg.Connection, dumps: dict[str, dict[str, Any]]) -> None:
    """The engine's state of the given services (the caller moves the snapshot cursor)."""
    await conn.executemany(
        "INSERT INTO projector_state (service, state) VALUES ($1, $2::jsonb) "
        "ON CONFLICT (service) DO UPDATE SET state = excluded.state",
        [(name, orjson.dumps(dump).decode()) for name, dump in sorted(dumps.items())])


async def copy_state(conn: asyncpg.Connection, dumps: dict[str, dict[str, Any]]) -> None:
    """``save_state`` into a table without these services' rows (a full rebuild's one
    snapshot, after the reset emptied it): COPY, no conflict to resolve."""
    await conn.copy_records_to_table(
        "projector_state", columns=["service", "state"],
        records=[(name, orjson.dumps(dump).decode()) for name, dump in sorted(dumps.items())])


# Read models are written set-wise: one statement per table per batch, whatever the
# number of rows (UNNEST of one array per column, or COPY for rows that are only added),
# instead of a round of parse-bind-execute per row (``executemany``).

_UPSERT_INCIDENTS = """
INSERT INTO incidents (id, service, title, severity, status, started_at, detected_at,
  acknowledged_at, resolved_at, detection_latency_seconds, duration_seconds, detected_by,
  detection_verdict, first_detector_source, public, merged_into, version, summary, doc)
SELECT id, service, title, severity, status, started_at, detected_at, acknowledged_at,
       resolved_at, latency, duration, detected_by, verdict, first_source, public,
       merged_into, version, summary::json, doc::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
            $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::float8[],
            $11::float8[], $12::text[], $13::text[], $14::text[], $15::bool[], $16::text[],
            $17::int[], $18::text[], $19::text[])
  AS x(id, service, title, severity, status, started_at, detected_at, acknowledged_at,
       resolved_at, latency, duration, detected_by, verdict, first_source, public,
       merged_into, version, summary, doc)
ON CONFLICT (id) DO UPDATE SET service = excluded.service, title = excluded.title,
  severity = excluded.severity, status = excluded.status,
  started_at = excluded.started_at, detected_at = excluded.detected_at,
  acknowledged_at = excluded.acknowledged_at, resolved_at = excluded.resolved_at,
  detection_latency_seconds = excluded.detection_latency_seconds,
  duration_seconds = excluded.duration_seconds, detected_by = excluded.detected_by,
  detection_verdict = excluded.detection_verdict,
  first_detector_source = excluded.first_detector_source, public = excluded.public,
  merged_into = excluded.merged_into, version = excluded.version,
  summary = excluded.summary, doc = excluded.doc
"""

_UPSERT_SUBJECTS = """
INSERT INTO subject_states (service, source, subject, kind, state, occurred_at, received_at,
                            position, summary)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                     $6::timestamptz[], $7::timestamptz[], $8::bigint[], $9::text[])
ON CONFLICT (service, source, subject) DO UPDATE SET
  kind = excluded.kind, state = excluded.state, occurred_at = excluded.occurred_at,
  received_at = excluded.received_at, position = excluded.position, summary = excluded.summary
"""

_UPSERT_JOINS = """
INSERT INTO signal_incidents (position, idx, incident_id)
SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[])
ON CONFLICT (position, idx) DO UPDATE SET incident_id = excluded.incident_id
"""

_UPSERT_ITEMS = """
INSERT INTO action_items (id, incident_id, status, owner, due_date, created_at, doc)
SELECT id, incident_id, status, owner, due_date, created_at, doc::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::date[], $6::timestamptz[],
            $7::text[]) AS x(id, incident_id, status, owner, due_date, created_at, doc)
ON CONFLICT (id) DO UPDATE SET status = excluded.status, owner = excluded.owner,
  due_date = excluded.due_date, doc = excluded.doc
"""


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows to one list per column (the arguments of an UNNEST)."""
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


async def write(conn: asyncpg.Connection, changes: Changes, pending: Pending,
                written: timeline_rows.WrittenTimelines | None = None) -> timeline_rows.Delta:
    """Write one batch's read-model rows (the caller holds the transaction). Timelines
    are written as deltas from ``written`` (what the live projector committed before),
    else whole; the caller tells ``written`` about the returned delta once it commits."""
    incidents = [*changes.incidents, *changes.merged]
    delta = (timeline_rows.full(incidents) if written is None
             else written.delta(incidents))
    if incidents:
        await conn.execute(_UPSERT_INCIDENTS, *columns(incident_rows(incidents), 19))
        await timeline_rows.write(conn, delta)
    if changes.services:
        await conn.execute("DELETE FROM service_risks WHERE service = ANY($1::text[])",
                           list(changes.risks))
        risk_rows = [(r.service, r.subject, r.kind, r.reason, r.since, r.position)
                     for risks in changes.risks.values() for r in risks]
        if risk_rows:
            await conn.copy_records_to_table(
                "service_risks", records=risk_rows,
                columns=["service", "subject", "kind", "reason", "since", "position"])
    if changes.subjects:
        await conn.execute(_UPSERT_SUBJECTS, *columns(
            [(s.service, s.source, s.subject, s.kind, s.state, s.occurred_at, s.received_at,
              s.position, s.summary) for s in changes.subjects], 9))
    if changes.joins:
        await conn.execute(_UPSERT_JOINS, *columns(
            [(pos, idx, inc) for (pos, idx), inc in changes.joins.items()], 3))
    if pending.deliveries:
        await conn.copy_records_to_table(
            "delivery_log", records=pending.deliveries,
            columns=["position", "transaction_id", "source", "received_at", "outcome", "error",
                     "signal_count", "services", "signals", "duplicate_of"])
    if pending.items:
        await conn.execute(_UPSERT_ITEMS, *columns(
            [(i.id, i.incident_id, i.status, i.owner, i.due_date, i.created_at,
              orjson.dumps(i.to_json()).decode()) for i in pending.items.values()], 7))
    return delta


def detected_source(inc: Incident) -> str | None:
    """The source of the entry marked ``detected``: it sits at ``detected_at`` in the
    time-ordered timeline (found by bisection: a storm's timeline is long)."""
    if inc.detected_at is None:
        return None
    at = bisect_left(inc.timeline, inc.detected_at, key=lambda e: e.at)
    for entry in inc.timeline[at:]:
        if entry.at != inc.detected_at:
            break
        if entry.marker == "detected":
            return entry.source
    return None


def incident_rows(incidents: Iterable[Incident]) -> list[tuple[Any, ...]]:
    """The ``incidents`` row of each incident (its timeline is written as rows apart,
    ``timeline_rows``)."""
    rows = []
    for inc in incidents:
        first_source = detected_source(inc)
        summary = orjson.dumps(incident_summary(inc)).decode()
        rows.append((
            inc.id, inc.service, inc.title, inc.severity, inc.status, inc.started_at,
            inc.detected_at, inc.acknowledged_at, inc.resolved_at,
            inc.detection_latency_seconds, inc.duration_seconds, inc.detected_by,
            inc.detection_verdict, first_source, inc.public, inc.merged_into, inc.version,
            summary, summary,
        ))
    return rows
