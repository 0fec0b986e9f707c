"""``hindsight rebuild``: drop the read models and replay the whole log.

The replay is the live projector's own code (``Projection`` and ``project_batch``), only
with bigger batches, so a rebuild and a live fold cannot disagree.

1. Leadership: take the projector's advisory lock (``PROJECTOR_LOCK``) on the rebuild's
   connection, without waiting. If a live projector holds it, refuse
   (``ProjectorRunning``): two writers would interleave their rows. While the rebuild
   holds it, ``serve`` processes keep serving and their projectors wait.
2. Reset, in one transaction: TRUNCATE every read model and set the checkpoint to the
   start of the log, so a reader never sees rows without the checkpoint that made them.
3. Replay, in one transaction: the read models' secondary indexes dropped (built again
   at the end, in the same transaction, so a crash cannot lose one); what each batch
   adds for good written as it is folded (the delivery log, subject states, signals'
   incidents, risks, the incidents retention dropped); the incidents still held
   rendered and written once at the end, not every intermediate version; the
   checkpoint and the engine snapshot with them. An interrupted rebuild leaves the
   empty read models of step 2, and the next projector to lead replays the log.
   Dropping an index locks its table: a reader of the read models (a ``serve`` still
   answering) waits for the rebuild's commit instead of reading half-built tables.
4. Release the lock: a waiting live projector restores the engine state the rebuild
   saved and follows the log from the rebuild's checkpoint.

``catch_up`` is steps 1 and 4 around the live projector's way of step 3: batches, each
committing its rows with the checkpoint (compare-and-set), from the checkpoint to
whatever it has not seen yet (``hindsight import`` uses it when no projector leads).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import asyncpg

from ingest.sources import is_current
from ingest.store import Cursor, EventStore, RecordedEvent, read_positions
from projections.engine.fold import Changes, EngineConfig
from projections.runtime.projection import (
    COPY,
    DELIVERY,
    Pending,
    Projection,
    Shard,
    copy_state,
    save_state,
    stored_firsts,
    write,
)
from projections.runtime.projector import (
    CHECKPOINT,
    PROJECTOR_LOCK,
    LostLeadership,
    load_checkpoint,
    refuse_a_log_from_another_cluster,
    reset_read_models,
    restore,
)

REBUILD_BATCH = 2000
QUEUE = 2  # folded batches waiting for the writer, at most
SLICE = 250  # events folded between returns to the event loop (the writer's turn)
GC_THRESHOLD = 200_000  # allocations between young collections while replaying
FINAL_CHUNK = 1000  # held incidents rendered and written at a time at a full rebuild's end
SNAPSHOT_CHUNK = 100  # services dumped and saved at a time by the final snapshot
HORIZON_WAIT = 0.05  # seconds between reads while the horizon holds events back
READ_MODELS = ("incidents", "timeline_entries", "subject_states", "service_risks",
               "signal_incidents", "delivery_log", "action_items")
MOMENTS = ("started_at", "detected_at", "acknowledged_at", "resolved_at")
SNAPSHOT_FIELDS = (*MOMENTS, "severity", "status", "detection_latency_seconds")


class ProjectorRunning(RuntimeError):
    """Another process leads the projection (a running ``hindsight serve``)."""


@dataclass
class Timing:
    """Where a replay's wall time went, in seconds: waiting for reads (``read``, the
    page's decode included), folding (``fold``), rendering changed incidents
    (``render``), waiting for the writer (``wait``: the write time the fold did not
    hide) and the final snapshot."""

    read: float = 0.0
    fold: float = 0.0
    render: float = 0.0
    wait: float = 0.0
    snapshot: float = 0.0
    final: float = 0.0  # a full rebuild's last writes (the incidents still held)
    indexes: float = 0.0  # a full rebuild's secondary indexes, built again
    shard_peak_mb: float = 0.0  # the largest shard process's peak RSS (sharded only)


@dataclass(frozen=True)
class Replayed:
    events: int
    seconds: float
    cursor: Cursor

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float(self.events)


Snapshot = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Change:
    incident_id: str
    fields: dict[str, tuple[Any, Any]]  # name -> (before, after)


@dataclass(frozen=True)
class Diff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


async def snapshot(conn: asyncpg.Connection) -> Snapshot:
    """Every incident (merged ones included): id, the four moments, severity, status
    and detection latency."""
    rows = await conn.fetch(
        f"SELECT id, {', '.join(SNAPSHOT_FIELDS)} FROM incidents ORDER BY id")
    return {r["id"]: {name: r[name] for name in SNAPSHOT_FIELDS} for r in rows}


def diff(before: Snapshot, after: Snapshot) -> Diff:
    changed = []
    for inc_id in sorted(before.keys() & after.keys()):
        fields = {name: (before[inc_id][name], after[inc_id][name]) for name in SNAPSHOT_FIELDS
                  if before[inc_id][name] != after[inc_id][name]}
        if fields:
            changed.append(Change(inc_id, fields))
    return Diff(added=sorted(after.keys() - before.keys()),
                removed=sorted(before.keys() - after.keys()), changed=changed)


async def _lock(conn: asyncpg.Connection) -> None:
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", PROJECTOR_LOCK):
        raise ProjectorRunning(
            "a projector is running against this database (a `hindsight serve` process "
            "leads the projection); stop every serve process and try again")


async def _unlock(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", PROJECTOR_LOCK)


async def reset(conn: asyncpg.Connection) -> None:
    """Step 2: empty read models and a checkpoint at the start of the log, together."""
    await reset_read_models(conn)


@dataclass
class _Batch:
    """One folded batch on its way to the writer."""

    changes: Changes
    pending: Pending
    previous: Cursor
    after: Cursor
    events: int  # the checkpoint's event count once it is written


class WriteFailed(RuntimeError):
    """The writer could not commit a batch: the rebuild stopped there. The read models
    and the checkpoint are those of the last batch committed (each batch commits its rows
    with its checkpoint, or nothing)."""


async def _writer(conn: asyncpg.Connection, queue: asyncio.Queue[_Batch | None],
                  fault: Callable[[str], None] | None, checkpoint: bool = True,
                  deferred: bool = False) -> None:
    """Commit batches in order, each with its checkpoint (compare-and-set), on the
    leader's connection, while the fold goes on with the next ones. A shard writes its
    rows only: the leader moves the checkpoint once every shard has finished."""
    while (item := await queue.get()) is not None:
        if deferred:  # inside the rebuild's one transaction
            await write(conn, item.changes, item.pending)
            if fault is not None:
                fault("after-read-models")
            continue
        async with conn.transaction():
            await write(conn, item.changes, item.pending)
            if fault is not None:
                fault("after-read-models")
            if checkpoint:
                await _move_checkpoint(conn, item.previous, item.after, item.events)


async def _move_checkpoint(conn: asyncpg.Connection, previous: Cursor, after: Cursor,
                           events: int, *, snapshot: bool = False) -> None:
    moved = await conn.execute(
        """UPDATE projector_checkpoint
           SET transaction_id = $2, position = $3, events = $4, updated_at = now(),
               snapshot_transaction_id = CASE WHEN $7 THEN $2 ELSE snapshot_transaction_id END,
               snapshot_position = CASE WHEN $7 THEN $3 ELSE snapshot_position END
           WHERE name = $1 AND transaction_id = $5 AND position = $6""",
        CHECKPOINT, after.transaction_id, after.position, events,
        previous.transaction_id, previous.position, snapshot)
    if moved != "UPDATE 1":
        raise LostLeadership("the checkpoint moved: another projector is writing")


async def _read(store: EventStore, cursor: Cursor, limit: int) -> list[RecordedEvent]:
    """The next page without bodies, then the bodies of the deliveries an older adapter
    read (parse once: only those are parsed again), in one indexed read."""
    batch = await store.read(cursor, limit, bodies=False)
    stale = [e.position for e in batch if e.type == DELIVERY
             and not is_current(e.data.get("parsed"), e.data["source"])]
    if not stale:
        return batch
    async with store.pool.acquire() as reader:
        bodies = {e.position: e.body for e in await read_positions(reader, stale)}
    return [replace(e, body=bodies[e.position]) if e.position in bodies else e for e in batch]


async def _replay(
    conn: asyncpg.Connection,
    store: EventStore,
    config: EngineConfig,
    batch_size: int,
    progress: Callable[[int], None] | None,
    fault: Callable[[str], None] | None = None,
    timing: Timing | None = None,
    shard: Shard | None = None,
    deferred: bool = False,
) -> Replayed:
    """Step 3: fold from the checkpoint to the end of the log as it was when we started.

    Three things overlap: the next page is read (on the store's pool) while this one is
    folded, and the writer commits batch N on ``conn`` while batch N+1 is folded (a
    bounded queue: at most ``QUEUE`` folded batches wait, which bounds memory). The
    fold runs ``SLICE`` events at a time between returns to the event loop, so the
    writer's next statement goes out while the fold goes on: PostgreSQL's work runs on
    the other core meanwhile.

    The end is a count, not an empty read: readers stop below the oldest transaction
    still running anywhere in the cluster (see ingest/store.py), so a read may come back
    empty while committed events wait behind that horizon.

    One engine snapshot at the end (every service changed since the last one, with the
    snapshot cursor at the final checkpoint), instead of one every SNAPSHOT_EVERY
    events: an interrupted rebuild leaves the previous snapshot, and the next projector
    folds from it to the checkpoint again without writing (``restore``)."""
    timing = timing if timing is not None else Timing()
    # The fold allocates millions of long-lived objects: with the default thresholds the
    # cyclic collector walks the whole engine again and again. Rarer collections, for
    # the replay only.
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *thresholds[1:])
    try:
        return await _replay_collected(conn, store, config, batch_size, progress, fault,
                                       timing, shard, deferred)
    finally:
        gc.set_threshold(*thresholds)


async def _replay_collected(
    conn: asyncpg.Connection,
    store: EventStore,
    config: EngineConfig,
    batch_size: int,
    progress: Callable[[int], None] | None,
    fault: Callable[[str], None] | None,
    timing: Timing,
    shard: Shard | None,
    deferred: bool = False,
) -> Replayed:
    if not deferred:
        return await _replay_batches(conn, store, config, batch_size, progress, fault,
                                     timing, shard)
    async with conn.transaction():
        indexes = await _drop_indexes(conn)
        replayed = await _replay_batches(conn, store, config, batch_size, progress, fault,
                                         timing, shard, deferred=True)
        t0 = time.perf_counter()
        for definition in indexes:
            await conn.execute(definition)
        timing.indexes += time.perf_counter() - t0
    return replayed


async def _drop_indexes(conn: asyncpg.Connection) -> list[str]:
    """Drop the read models' secondary indexes (neither primary keys nor unique ones,
    which the writes' ON CONFLICT needs): their definitions, to build them again once
    the rows are in (the caller's transaction: a crash cannot lose one)."""
    rows = await conn.fetch(
        """SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_class t ON t.oid = i.indrelid
           WHERE t.relname = ANY($1::text[]) AND NOT i.indisprimary AND NOT i.indisunique
             AND t.relnamespace = current_schema()::regnamespace
           ORDER BY c.relname""", list(READ_MODELS))
    for row in rows:
        await conn.execute(f'DROP INDEX "{row["name"]}"')
    return [row["definition"] for row in rows]


async def _replay_batches(
    conn: asyncpg.Connection,
    store: EventStore,
    config: EngineConfig,
    batch_size: int,
    progress: Callable[[int], None] | None,
    fault: Callable[[str], None] | None,
    timing: Timing,
    shard: Shard | None,
    deferred: bool = False,
) -> Replayed:
    started = time.perf_counter()
    target = await log_size(conn)
    if shard is None:
        cursor, events = await load_checkpoint(conn)
        projection = await restore(conn, store, config, cursor)
    else:  # a shard of a full rebuild: from the start, the leader has reset
        cursor, events = Cursor(), 0
        projection = Projection(config, shard)
    begun, done = cursor, 0
    queue: asyncio.Queue[_Batch | None] = asyncio.Queue(maxsize=QUEUE)
    writer = asyncio.ensure_future(_writer(conn, queue, fault, checkpoint=shard is None,
                                           deferred=deferred))
    pending: asyncio.Task[list[RecordedEvent]] = asyncio.ensure_future(
        _read(store, cursor, batch_size))

    async def hand(item: _Batch | None) -> None:
        put = asyncio.ensure_future(queue.put(item))
        await asyncio.wait([put, writer], return_when=asyncio.FIRST_COMPLETED)
        if writer.done() and not put.done():
            put.cancel()
        if writer.done() and writer.exception() is not None:
            raise WriteFailed(f"the rebuild stopped: writing a batch failed "
                              f"({writer.exception()!r}); read models and checkpoint are "
                              "those of the last batch written") from writer.exception()

    try:
        while True:
            t0 = time.perf_counter()
            batch = await pending
            timing.read += time.perf_counter() - t0
            if not batch:
                if events >= target:
                    break
                await asyncio.sleep(HORIZON_WAIT)
                pending = asyncio.ensure_future(_read(store, cursor, batch_size))
                continue
            pending = asyncio.ensure_future(_read(store, batch[-1].cursor, batch_size))
            t0 = time.perf_counter()
            firsts: Mapping[int, RecordedEvent] = {}
            if any(e.type == COPY for e in batch):  # not on ``conn``: the writer's
                async with store.pool.acquire() as reader:
                    firsts = await stored_firsts(reader, batch)
            timing.read += time.perf_counter() - t0
            item = Pending()
            t0 = time.perf_counter()
            for start in range(0, len(batch), SLICE):
                projection.apply(batch[start:start + SLICE], item, firsts)
                await asyncio.sleep(0)  # the writer's next statement goes out
            t1 = time.perf_counter()
            changes = projection.engine.take_changes(held=not deferred)
            projection.engine.drop_renders()  # memory: written, never read again here
            projection.unsaved.update(changes.services)
            t2 = time.perf_counter()
            timing.fold += t1 - t0
            timing.render += t2 - t1
            await hand(_Batch(changes, item, cursor, batch[-1].cursor, events + len(batch)))
            timing.wait += time.perf_counter() - t2
            cursor, events = batch[-1].cursor, events + len(batch)
            done += len(batch)
            if progress is not None:
                progress(len(batch))
        await hand(None)
        t0 = time.perf_counter()
        await writer
        timing.wait += time.perf_counter() - t0
        if deferred:
            # Each held incident once, as it ends: a few at a time (memory).
            while projection.engine.pending_incidents:
                t0 = time.perf_counter()
                changes = projection.engine.take_changes(limit=FINAL_CHUNK)
                projection.engine.drop_renders()
                projection.unsaved.update(changes.services)
                t1 = time.perf_counter()
                await write(conn, changes, Pending())
                timing.render += t1 - t0
                timing.final += time.perf_counter() - t1
            await _move_checkpoint(conn, begun, cursor, events)
        if projection.unsaved:
            t0 = time.perf_counter()
            names = sorted(projection.unsaved)
            async with conn.transaction():
                # A few services at a time: every service's dump at once would hold the
                # whole engine twice in memory (objects and JSON).
                saver = copy_state if deferred else save_state  # deferred: emptied
                for lo in range(0, len(names), SNAPSHOT_CHUNK):
                    await saver(conn, {name: projection.engine.dump(name)
                                            for name in names[lo:lo + SNAPSHOT_CHUNK]})
                if shard is None:
                    await _move_checkpoint(conn, cursor, cursor, events, snapshot=True)
            projection.unsaved.clear()
            timing.snapshot += time.perf_counter() - t0
    finally:
        for task in (pending, writer):
            if not task.done():
                task.cancel()
        await asyncio.gather(pending, writer, return_exceptions=True)
    return Replayed(done, time.perf_counter() - started, cursor)


async def rebuild(
    conn: asyncpg.Connection,
    store: EventStore,
    config: EngineConfig,
    *,
    batch_size: int = REBUILD_BATCH,
    progress: Callable[[int], None] | None = None,
    fault: Callable[[str], None] | None = None,
    timing: Timing | None = None,
    shards: int = 1,
    dsn: str | None = None,
) -> Replayed:
    """Steps 1 to 4. ``conn`` must be a dedicated connection (it holds the session lock);
    ``store`` reads the log on its own pool.

    ``shards`` > 1 (with ``dsn``, where the shard processes connect) folds the services
    in that many processes (``projections.runtime.shards``), unless the log holds a
    manual merge (docs/architecture.md, "Sharded rebuild"): then in this process.

    A log restored from another cluster is refused as ``serve`` refuses it: its events
    would read as none, and the rebuild would empty the read models.
    """
    await refuse_a_log_from_another_cluster(conn)
    await _lock(conn)
    try:
        await reset(conn)
        if shards > 1 and dsn is not None and not await has_merges(conn):
            from projections.runtime.shards import replay_sharded

            return await replay_sharded(conn, dsn, config, shards, batch_size, progress,
                                        timing)
        return await _replay(conn, store, config, batch_size, progress, fault, timing,
                             deferred=True)
    finally:
        await _unlock(conn)


async def has_merges(conn: asyncpg.Connection) -> bool:
    """Whether the log holds a manual merge (the one event that joins two services)."""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM events WHERE type = 'incident.merged')"))


async def catch_up(
    conn: asyncpg.Connection,
    store: EventStore,
    config: EngineConfig,
    *,
    batch_size: int = REBUILD_BATCH,
    progress: Callable[[int], None] | None = None,
    fault: Callable[[str], None] | None = None,
    timing: Timing | None = None,
) -> Replayed:
    """Fold what the checkpoint has not seen, when no live projector leads."""
    await _lock(conn)
    try:
        return await _replay(conn, store, config, batch_size, progress, fault, timing)
    finally:
        await _unlock(conn)


async def log_size(conn: asyncpg.Connection) -> int:
    """How many events the log holds (a progress bar's total)."""
    return int(await conn.fetchval("SELECT count(*) FROM events"))


def describe(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        from ingest.signals import format_time

        return format_time(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
