"""Rebuild throughput: a realistic log of N deliveries (default 1,000,000) replayed by
``hindsight rebuild``'s code (``projections.runtime.rebuild.rebuild``) with 1 and 2
shards, beside two baselines in the same run (PostgreSQL's bare ``COPY`` of the log out
in read order, and ``EventStore.read`` of every page), with the time split (read and
decode, fold, render, waiting for the writer, final snapshot), CPU time and peak memory.

    .venv/bin/python bench/rebuild.py --deliveries 100000 --shards 1

The log: the mix of ``tests/scenarios/traffic.py`` (outages seen by Uptime Kuma and
Alertmanager with repeat notifications, missed cron runs, flapping checks, GitHub deploys,
certificate warnings) over ``--services`` services, stored as ingest stores deliveries
(with the adapter's signals: parse once; ``--legacy-log`` stores them without, as before,
so every delivery is parsed again). ``--base`` distinct deliveries are generated; the rest
are replicas of them over renamed services (``replica``), all written with COPY. Goals
(issue 11): >= 10,000 deliveries/s, peak RSS < 500 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # a spawned rebuild process
    sys.path.append(str(Path(__file__).resolve().parent))  # after the root (bench/ingest.py)

import asyncpg
import orjson
from _common import databases, goal, machine

from hindsight.app import engine_config_from
from hindsight.database import create_pool
from hindsight.settings import load_settings
from ingest.delivery import Delivery, keep_headers
from ingest.signals import format_time
from ingest.sources import understand
from ingest.store import Cursor, EventStore
from ingest.webhooks import delivery_data, delivery_id
from projections.engine.fold import EngineConfig
from projections.runtime.rebuild import Replayed, Timing, rebuild
from tests.scenarios.traffic import episodes, service_map

COLUMNS = ["stream", "stream_version", "type", "data", "metadata", "body", "idempotency_key",
           "received_at"]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


Base = tuple[str, str, bytes, str, datetime]  # source, data, body, key, received_at


def base_rows(count: int, services: int, repeats: int, seed: int, legacy: bool) -> list[Base]:
    """``count`` distinct deliveries of ``services`` services, in receipt order within
    each episode, as ingest stores them (a repeated body is one delivery, as in ingest)."""
    import random

    rng = random.Random(seed)
    rows: list[Base] = []
    seen: set[str] = set()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for episode in episodes(rng, start, services, repeats):
        for d in sorted(episode, key=lambda r: r.received_at):
            lower = {k.lower(): v for k, v in d.headers.items()}
            key, windowed = delivery_id(d.source, lower, d.body)
            if windowed:  # as ingest keys it (ingest/webhooks.py)
                key = f"{key}@{format_time(d.received_at)}"
            if key in seen:
                continue
            seen.add(key)
            delivery = Delivery(d.source, d.body, d.received_at, keep_headers(lower))
            # As ingest stores it (parse once), or as it was stored before that.
            data = ({"source": d.source, "headers": delivery.headers} if legacy
                    else delivery_data(delivery, understand(delivery)))
            rows.append((d.source, orjson.dumps(data).decode(), d.body, key, d.received_at))
            if len(rows) >= count:
                return rows
    raise AssertionError("episodes() is endless")


def replica(rows: list[Base], r: int) -> list[tuple[object, ...]]:
    """The deliveries of ``rows`` as another set of services sent them: every service
    name ``svcNNN`` (and its shown form ``SvcNNN``) becomes ``rRRsvcNNN`` in the body and
    in the stored signals, so each replica folds into incidents of its own services."""
    if r == 0:
        return [(f"delivery-{s}-{uuid.uuid4().hex}", 1, "delivery.received", d,
                 '{"imported": true}', b, k, at) for s, d, b, k, at in rows]
    low, up = f"r{r:02d}svc", f"R{r:02d}svc"
    out: list[tuple[object, ...]] = []
    for source, data, body, key, at in rows:
        body = body.replace(b"svc", low.encode()).replace(b"Svc", up.encode())
        data = data.replace("svc", low).replace("Svc", up)
        out.append((f"delivery-{source}-{uuid.uuid4().hex}", 1, "delivery.received", data,
                    '{"imported": true}', body, f"{key}#{r}", at))
    return out


def replicated_services(services: int, replicas: int) -> dict[str, list[str]]:
    """``[services]`` for every replica (``tests.scenarios.traffic.service_map`` renamed;
    the deploy glob written out as the one subject it matches in this traffic)."""
    base = service_map(services)
    out: dict[str, list[str]] = {}
    for r in range(replicas):
        for name, patterns in base.items():
            if r == 0:
                out[name] = patterns
            else:  # exact names: thousands of globs would make every match a long scan
                renamed = name.replace("svc", f"r{r:02d}svc")
                out[renamed] = [patterns[0].replace("Svc", f"R{r:02d}svc"),
                                f"acme/{renamed}-service/production"]
    return out


async def generate(url: str, count: int, base: int, services: int, repeats: int, seed: int,
                   legacy: bool = False) -> tuple[int, int]:
    """Write ``count`` deliveries with COPY: ``base`` distinct ones generated (adapter
    run, as ingest stores them), then replicated over renamed services (a string
    replacement, so generating a million costs little more than copying them), chunk by
    chunk so the log stays in rough receipt order. Returns (written, replicas)."""
    rows = base_rows(min(base, count), services, repeats, seed, legacy)
    replicas = -(-count // len(rows))
    written = 0
    conn = await asyncpg.connect(url)
    try:
        for lo in range(0, len(rows), 5000):
            chunk = rows[lo:lo + 5000]
            for r in range(replicas):
                out = replica(chunk, r)
                # Replica r covers base rows [0, count - r * len(rows)) only.
                room = count - r * len(rows) - lo
                if room <= 0:
                    continue
                out = out[:room]
                await conn.copy_records_to_table("events", records=out, columns=COLUMNS)
                written += len(out)
            print(f"\r  generated {written:,} deliveries", end="", flush=True)
    finally:
        await conn.close()
    print()
    return written, replicas


async def read_all(store: EventStore, batch_size: int) -> tuple[int, float]:
    started, cursor, n = time.perf_counter(), Cursor(), 0
    while batch := await store.read(cursor, batch_size):
        cursor, n = batch[-1].cursor, n + len(batch)
    return n, time.perf_counter() - started


async def copy_out(url: str) -> tuple[int, float]:
    """The floor: PostgreSQL's bare ``COPY`` of the log's rows out, in read order."""
    conn = await asyncpg.connect(url)
    sink = _Count()
    started = time.perf_counter()
    try:
        await conn.copy_from_query(
            "SELECT position, transaction_id, stream, type, data, body, received_at "
            "FROM events ORDER BY transaction_id, position", output=sink)
        n = int(await conn.fetchval("SELECT count(*) FROM events"))
    finally:
        await conn.close()
    return n, time.perf_counter() - started


class _Count:
    def __init__(self) -> None:
        self.bytes = 0

    async def __call__(self, data: bytes) -> None:
        self.bytes += len(data)


def cpu() -> float:
    """CPU seconds of this process and its finished children (shards)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


async def run_rebuild(url: str, config: EngineConfig, batch_size: int, shards: int
                      ) -> tuple[Replayed, Timing, float, int]:
    pool = await create_pool(url, min_size=1, max_size=4)
    store = EventStore(pool, notify=False)
    timing = Timing()
    cpu0 = cpu()
    try:
        conn = await asyncpg.connect(url)
        try:
            replayed = await rebuild(conn, store, config, batch_size=batch_size,
                                     timing=timing, shards=shards, dsn=url)
            incidents = int(await conn.fetchval("SELECT count(*) FROM incidents"))
        finally:
            await conn.close()
    finally:
        await pool.close()
    return replayed, timing, cpu() - cpu0, incidents


def rebuild_process(url: str, config: EngineConfig, batch_size: int, shards: int
                    ) -> tuple[Replayed, Timing, float, int, float]:
    """One rebuild in a fresh process (its peak memory is the rebuild's alone, not the
    generator's): what ``run_rebuild`` returns, and its peak RSS in MB."""
    replayed, timing, cpu_s, incidents = asyncio.run(run_rebuild(url, config, batch_size,
                                                                 shards))
    return replayed, timing, cpu_s, incidents, peak_mb()


def report(label: str, replayed: Replayed, timing: Timing, cpu_s: float,
           incidents: int) -> None:
    rate = replayed.events / replayed.seconds
    print(f"rebuild, {label}: {replayed.events:,} deliveries in {replayed.seconds:.1f} s "
          f"({rate:,.0f} deliveries/s; goal >= 10,000: {goal(rate >= 10_000)}); "
          f"{incidents:,} incidents; CPU of this process (and finished shards) "
          f"{cpu_s:.1f} s = {cpu_s / replayed.events * 1e6:,.0f} us per delivery")
    print(f"  split (wall s): read+decode {timing.read:.1f}, fold {timing.fold:.1f}, "
          f"render {timing.render:.1f}, waiting for the writer {timing.wait:.1f}, "
          f"final snapshot {timing.snapshot:.1f}, final writes {timing.final:.1f}, "
          f"indexes built {timing.indexes:.1f}"
          + (" (the slowest shard's)" if timing.shard_peak_mb else ""))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--base", type=int, default=25_000,
                        help="distinct deliveries generated; the rest are replicas of them "
                             "over renamed services")
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=60,
                        help="most Alertmanager repeat notifications per outage")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--legacy-log", action="store_true",
                        help="store deliveries without their signals (as before parse-once), "
                             "so the rebuild re-parses every one")
    args = parser.parse_args()

    async with databases() as dbs:
        print(machine())
        print(await dbs.describe())
        url = await dbs.fresh("bench_rebuild")
        t0 = time.perf_counter()
        count, replicas = await generate(url, args.deliveries, args.base, args.services,
                                         args.repeats, args.seed, args.legacy_log)
        print(f"log: {count:,} deliveries ({min(args.base, count):,} generated, "
              f"{replicas} replicas over {args.services * replicas:,} services) written in "
              f"{time.perf_counter() - t0:.1f} s")
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("VACUUM ANALYZE events")
        finally:
            await conn.close()
        settings = load_settings(environ={}, config=None).model_copy(
            update={"services": replicated_services(args.services, replicas)})
        config = engine_config_from(settings)
        n, copy_s = await copy_out(url)
        print(f"baseline, COPY of the log out in read order: {n:,} rows in {copy_s:.1f} s "
              f"({n / copy_s:,.0f}/s)")
        pool = await create_pool(url, min_size=1, max_size=4)
        try:
            read, read_s = await read_all(EventStore(pool, notify=False), args.batch_size)
        finally:
            await pool.close()
        print(f"baseline, EventStore.read of the log (pages, decoded): {read:,} events in "
              f"{read_s:.1f} s ({read / read_s:,.0f}/s)")
        loop = asyncio.get_running_loop()
        for shards in args.shards:
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as px:
                replayed, timing, cpu_s, incidents, peak = await loop.run_in_executor(
                    px, rebuild_process, url, config, args.batch_size, shards)
            report(f"{shards} shard{'s' if shards > 1 else ''}", replayed, timing, cpu_s,
                   incidents)
            largest = max(peak, timing.shard_peak_mb)
            print(f"  peak memory (maxrss): rebuild process {peak:,.0f} MB"
                  + (f", largest shard {timing.shard_peak_mb:,.0f} MB" if shards > 1 else "")
                  + f" (goal < 500 MB per process: {goal(largest < 500)})")


if __name__ == "__main__":
    asyncio.run(main())
