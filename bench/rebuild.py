"""Rebuild throughput: a realistic log of N deliveries replayed by ``hindsight rebuild``'s
code (``projections.runtime.rebuild.rebuild``), beside the time to merely read the event table in
order (``EventStore.read``), with peak memory.

    .venv/bin/python bench/rebuild.py --deliveries 100000

The log: the mix of ``tests/scenarios/traffic.py`` (outages seen by Uptime Kuma and
Alertmanager with repeat notifications, missed cron runs, flapping checks, GitHub deploys,
certificate warnings) over ``--services`` services, stored as ingest stores deliveries
(with the adapter's signals: parse once; ``--legacy-log`` stores them without, as before,
so every delivery is parsed again), written with COPY in batches. Goals: >= 50,000
deliveries/s, peak RSS < 500 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
import uuid
from datetime import UTC, datetime

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
from projections.runtime.rebuild import rebuild
from tests.scenarios.traffic import episodes, service_map

COLUMNS = ["stream", "stream_version", "type", "data", "metadata", "body", "idempotency_key",
           "received_at"]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def generate(url: str, count: int, services: int, repeats: int, seed: int,
                   legacy: bool = False) -> int:
    """Write ``count`` deliveries, in receipt order within each batch; returns how many
    distinct deliveries were written (a repeated body is one delivery, as in ingest).
    Each carries the adapter's signals as ingest stores them, unless ``legacy``: then
    none, as before parse-once, and the rebuild runs every adapter again."""
    import random

    rng = random.Random(seed)
    conn = await asyncpg.connect(url)
    written, seen = 0, set()
    batch: list[tuple[object, ...]] = []
    start = datetime(2024, 1, 1, tzinfo=UTC)
    try:
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
                batch.append((f"delivery-{d.source}-{uuid.uuid4().hex}", 1,
                              "delivery.received", orjson.dumps(data).decode(),
                              '{"imported": true}', d.body, key, d.received_at))
            if len(batch) >= 10_000 or written + len(batch) >= count:
                batch = batch[:count - written]
                await conn.copy_records_to_table("events", records=batch, columns=COLUMNS)
                written += len(batch)
                batch = []
                print(f"\r  generated {written:,} deliveries", end="", flush=True)
                if written >= count:
                    break
    finally:
        await conn.close()
    print()
    return written


async def read_all(store: EventStore, batch_size: int) -> tuple[int, float]:
    started, cursor, n = time.perf_counter(), Cursor(), 0
    while batch := await store.read(cursor, batch_size):
        cursor, n = batch[-1].cursor, n + len(batch)
    return n, time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=60,
                        help="most Alertmanager repeat notifications per outage")
    parser.add_argument("--batch-size", type=int, default=2000)
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
        count = await generate(url, args.deliveries, args.services, args.repeats, args.seed,
                               args.legacy_log)
        print(f"log: {count:,} deliveries written in {time.perf_counter() - t0:.1f} s")
        pool = await create_pool(url, min_size=1, max_size=4)
        store = EventStore(pool, notify=False)
        settings = load_settings(environ={}, config=None).model_copy(
            update={"services": service_map(args.services)})
        config = engine_config_from(settings)
        try:
            read, read_s = await read_all(store, args.batch_size)
            memory_before = peak_mb()
            conn = await asyncpg.connect(url)
            try:
                replayed = await rebuild(conn, store, config, batch_size=args.batch_size)
                incidents = await conn.fetchval("SELECT count(*) FROM incidents")
            finally:
                await conn.close()
        finally:
            await pool.close()
        rate = replayed.events / replayed.seconds
        peak = peak_mb()
        print(f"read the event table in order: {read:,} events in {read_s:.1f} s "
              f"({read / read_s:,.0f}/s)")
        print(f"rebuild: {replayed.events:,} deliveries in {replayed.seconds:.1f} s "
              f"({rate:,.0f} deliveries/s; goal >= 50,000: {goal(rate >= 50_000)}); "
              f"{incidents:,} incidents")
        print(f"peak memory (maxrss): {peak:,.0f} MB (after reading only: "
              f"{memory_before:,.0f} MB; goal < 500 MB: {goal(peak < 500)})")


if __name__ == "__main__":
    asyncio.run(main())
