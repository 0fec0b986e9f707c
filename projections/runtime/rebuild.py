"""``hindsight rebuild``: drop the read models and replay the whole log.

The replay is the live projector's own code (``Projection`` and ``project_batch``), only
with bigger batches, so a rebuild and a live fold cannot disagree.

1. Leadership: take the projector's advisory lock (``PROJECTOR_LOCK``) on the rebuild's
   connection, without waiting. If a live projector holds it, refuse
   (``ProjectorRunning``): two writers would interleave their rows. While the rebuild
   holds it, ``serve`` processes keep serving and their projectors wait.
2. Reset, in one transaction: TRUNCATE every read model and set the checkpoint to the
   start of the log, so a reader never sees rows without the checkpoint that made them.
3. Replay in batches: each commits its rows with the checkpoint (compare-and-set), like
   the live projector. An interrupted rebuild leaves consistent read models up to its
   checkpoint, and the next projector to lead simply carries on from there.
4. Release the lock: a waiting live projector restores the engine state the rebuild
   saved and follows the log from the rebuild's checkpoint.

``catch_up`` is steps 1, 3 and 4 without the reset: fold whatever the checkpoint has not
seen yet (``hindsight import`` uses it when no projector leads).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from ingest.store import Cursor, EventStore, RecordedEvent
from projections.engine.fold import EngineConfig
from projections.runtime.projector import (
    PROJECTOR_LOCK,
    load_checkpoint,
    project_batch,
    reset_read_models,
    restore,
)

REBUILD_BATCH = 2000
HORIZON_WAIT = 0.05  # seconds between reads while the horizon holds events back
MOMENTS = ("started_at", "detected_at", "acknowledged_at", "resolved_at")
SNAPSHOT_FIELDS = (*MOMENTS, "severity", "status", "detection_latency_seconds")


class ProjectorRunning(RuntimeError):
    """Another process leads the projection (a running ``hindsight serve``)."""


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


async def _replay(
    conn: asyncpg.Connection,
    store: EventStore,
    config: EngineConfig,
    batch_size: int,
    progress: Callable[[int], None] | None,
) -> Replayed:
    """Step 3: fold from the checkpoint to the end of the log as it was when we started.

    The end is a count, not an empty read: readers stop below the oldest transaction
    still running anywhere in the cluster (see ingest/store.py), so a read may come back
    empty while committed events wait behind that horizon. The next batch is read while
    this one is folded and written (reading and writing use two connections)."""
    started = time.perf_counter()
    cursor, events = await load_checkpoint(conn)
    target = await log_size(conn)
    projection = await restore(conn, store, config, cursor)
    done = 0
    pending: asyncio.Task[list[RecordedEvent]] = asyncio.ensure_future(
        store.read(cursor, batch_size))
    try:
        while True:
            batch = await pending
            if not batch:
                if events >= target:
                    break
                await asyncio.sleep(HORIZON_WAIT)
                pending = asyncio.ensure_future(store.read(cursor, batch_size))
                continue
            pending = asyncio.ensure_future(store.read(batch[-1].cursor, batch_size))
            await project_batch(conn, projection, batch, cursor, events)
            cursor, events = batch[-1].cursor, events + len(batch)
            done += len(batch)
            if progress is not None:
                progress(len(batch))
    finally:
        if not pending.done():
            pending.cancel()
    return Replayed(done, time.perf_counter() - started, cursor)


async def rebuild(
    conn: asyncpg.Connection,
    store: EventStore,
    config: EngineConfig,
    *,
    batch_size: int = REBUILD_BATCH,
    progress: Callable[[int], None] | None = None,
) -> Replayed:
    """Steps 1 to 4. ``conn`` must be a dedicated connection (it holds the session lock);
    ``store`` reads the log on its own pool."""
    await _lock(conn)
    try:
        await reset(conn)
        return await _replay(conn, store, config, batch_size, progress)
    finally:
        await _unlock(conn)


async def catch_up(
    conn: asyncpg.Connection,
    store: EventStore,
    config: EngineConfig,
    *,
    batch_size: int = REBUILD_BATCH,
    progress: Callable[[int], None] | None = None,
) -> Replayed:
    """Fold what the checkpoint has not seen, when no live projector leads."""
    await _lock(conn)
    try:
        return await _replay(conn, store, config, batch_size, progress)
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
