"""A rebuild's fold split by service across processes (docs/architecture.md, "Sharded
rebuild").

Signals never cross services, so the services fall into ``count`` shards by a stable
hash of their name (``Shard``), and each shard process reads the whole log, folds the
signals of its services only (each keeps its index in its delivery), and writes their
rows on its own connection. What belongs to no service goes with the first shard: the
delivery log and action items. A manual declaration goes to the shard of its service;
every other manual event reaches every shard and changes only the one holding its
incident. A manual merge is the one event that can join two services: a log holding one
is rebuilt in one process (``rebuild.has_merges``).

Ids are what one process gives: an incident's id hashes its service, subject and time,
and the attempt counter that avoids a held id only ever meets ids of the same service.

The leader (the process holding the projector's lock) moves the checkpoint, with the
snapshot cursor, once every shard has committed its rows and its services' state: until
then the checkpoint stays at the start of the log. If a shard fails, the leader empties
the read models again and raises ``WriteFailed``: never rows without their checkpoint
that a projector would then fold twice.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import asyncpg

from ingest.connections import connect, create_pool
from ingest.store import Cursor, EventStore
from projections.engine.fold import EngineConfig
from projections.runtime.projection import Shard
from projections.runtime.projector import reset_read_models

if TYPE_CHECKING:
    from projections.runtime.rebuild import Replayed, Timing


async def replay_sharded(
    conn: asyncpg.Connection,
    dsn: str,
    config: EngineConfig,
    shards: int,
    batch_size: int,
    progress: Callable[[int], None] | None,
    timing: Timing | None,
) -> Replayed:
    """Step 3 of a rebuild in ``shards`` processes; the read models were just reset."""
    from projections.runtime.rebuild import Replayed, WriteFailed, _move_checkpoint

    loop = asyncio.get_running_loop()
    started = loop.time()
    context = multiprocessing.get_context("spawn")  # no inherited event loop or sockets
    with ProcessPoolExecutor(max_workers=shards, mp_context=context) as pool:
        runs = [loop.run_in_executor(pool, run_shard, dsn, config, index, shards, batch_size)
                for index in range(shards)]
        results = await asyncio.gather(*runs, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        await reset_read_models(conn)
        raise WriteFailed(f"the rebuild stopped: a shard failed ({failed[0]!r}); the read "
                          "models are empty again: run the rebuild again") from failed[0]
    done: list[dict[str, Any]] = [r for r in results if isinstance(r, dict)]
    cursors = {tuple(r["cursor"]) for r in done}
    counts = {r["events"] for r in done}
    if len(cursors) != 1 or len(counts) != 1:
        await reset_read_models(conn)
        raise WriteFailed(f"the shards read different logs ({cursors}, {counts}); the read "
                          "models are empty again: run the rebuild again")
    cursor, events = Cursor(*cursors.pop()), counts.pop()
    async with conn.transaction():
        await _move_checkpoint(conn, Cursor(), cursor, events, snapshot=True)
    if timing is not None:  # the slowest shard's split: they run side by side
        for name in ("read", "fold", "render", "wait", "snapshot"):
            setattr(timing, name, max(r["timing"][name] for r in done))
        timing.shard_peak_mb = max(r["maxrss_mb"] for r in done)
    if progress is not None:
        progress(events)
    return Replayed(events, loop.time() - started, cursor)


def run_shard(dsn: str, config: EngineConfig, index: int, count: int,
              batch_size: int) -> dict[str, Any]:
    """One shard's process: fold and write its services, save their state."""
    return asyncio.run(_shard(dsn, config, Shard(index, count), batch_size))


async def _shard(dsn: str, config: EngineConfig, shard: Shard,
                 batch_size: int) -> dict[str, Any]:
    from projections.runtime.rebuild import Timing, _replay

    conn = await connect(dsn)
    pool = await create_pool(dsn, min_size=1, max_size=2)
    timing = Timing()
    try:
        replayed = await _replay(conn, EventStore(pool, notify=False), config, batch_size,
                                 None, None, timing, shard=shard)
    finally:
        await pool.close()
        await conn.close()
    return {"events": replayed.events,
            "cursor": (replayed.cursor.transaction_id, replayed.cursor.position),
            "timing": asdict(timing),
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
