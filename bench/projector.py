"""The live projector's CPU per event, by batch size (issue 11, live lag).

    .venv/bin/python bench/projector.py [--seconds 10] [--batches 20,200,5000] [--services 0]

Needs ``wrk``. Fills a fresh database the way bench/ingest.py loads a server: ``hindsight
serve --no-projector`` takes ``wrk``'s distinct Alertmanager deliveries (its Lua script;
``--services 0`` keeps the fixtures' labels, an alert storm whose incidents grow to
thousands of entries) for ``--seconds``. Then, in this process, the stored log is
projected from the start once per batch size, as the live projector does
(``project_batch``: fold, render, write, checkpoint, one transaction per batch), with
the read models emptied before each pass.

Printed per batch size: CPU µs per event of this process (the fold, render and encoding;
PostgreSQL's own work is not counted), and wall time. The baseline in the same run is
``EventStore.read`` of the same log (paging and decoding the events, which every
projection pays). Small batches are the live case under a steady stream (the projector
reads at most every 0.1 s); the gap to 5,000 is what each batch costs whatever its size.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import secrets
import signal
import sys
import tempfile
import time
from pathlib import Path

import _common as c

from hindsight.database import connect, create_pool
from ingest.store import Cursor, EventStore, RecordedEvent
from projections.runtime.projection import Projection, engine_config
from projections.runtime.projector import load_checkpoint, project_batch, reset_read_models

# bench/ingest.py's load generator and Lua scripts (its module name would shadow the
# ``ingest`` package, hence loaded by path).
_spec = importlib.util.spec_from_file_location("bench_ingest",
                                               Path(__file__).with_name("ingest.py"))
assert _spec is not None
assert _spec.loader is not None
load = importlib.util.module_from_spec(_spec)
sys.modules["bench_ingest"] = load
_spec.loader.exec_module(load)


async def fill(db_url: str, tmp: Path, args: argparse.Namespace) -> float:
    token = secrets.token_urlsafe(24)
    proc, base, log = c.launch_server(tmp, db_url, token, "warning", projector=False)
    try:
        await c.wait_ready(base, proc, log)
        script = load.lua_script(tmp / "full.lua", token, 0, 2, args.services)
        wrk = argparse.Namespace(threads=2)
        result = await load.run_wrk(base, script, wrk, args.seconds, 64, None)
        return float(result.rate)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


async def read_log(store: EventStore) -> tuple[list[RecordedEvent], float]:
    events: list[RecordedEvent] = []
    cursor = Cursor()
    started = time.process_time()
    while batch := await store.read(cursor, 5000):
        events += batch
        cursor = batch[-1].cursor
    return events, time.process_time() - started


async def project(db_url: str, events: list[RecordedEvent], size: int) -> tuple[float, float]:
    """(CPU s of this process, wall s) to project ``events`` in batches of ``size``."""
    conn = await connect(db_url)
    try:
        await reset_read_models(conn)
        cursor, count = await load_checkpoint(conn)
        projection = Projection(engine_config())
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, len(events), size):
            batch = events[start:start + size]
            await project_batch(conn, projection, batch, cursor, count)
            cursor, count = batch[-1].cursor, count + len(batch)
        return time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> None:
    async with c.databases() as dbs:
        db_url = await dbs.fresh("bench_projector")
        print(f"# bench/projector.py: {c.machine()}")
        print(f"# {await dbs.describe()}")
        with tempfile.TemporaryDirectory(prefix="hindsight-bench-") as name:
            rate = await fill(db_url, Path(name), args)
        pool = await create_pool(db_url, min_size=1, max_size=2)
        try:
            events, read_cpu = await read_log(EventStore(pool))
        finally:
            await pool.close()
        print(f"log: {len(events):,} events stored at {rate:,.0f}/s for {args.seconds:g} s "
              f"(--services {args.services})")
        print(f"baseline, EventStore.read of the log: {1e6 * read_cpu / len(events):,.0f} µs "
              "CPU per event")
        for size in args.batches:
            cpu, wall = await project(db_url, events, size)
            print(f"projected in batches of {size:>5,}: {1e6 * cpu / len(events):,.0f} µs CPU "
                  f"per event (this process), {len(events) / wall:,.0f} events/s", flush=True)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0, help="seconds of load filling the log")
    p.add_argument("--batches", type=lambda s: [int(x) for x in s.split(",")],
                   default=[20, 200, 5000], help="batch sizes, comma-separated")
    p.add_argument("--services", type=int, default=0,
                   help="spread alerts over this many services (0: an alert storm)")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
