"""Appends per second: the event store beside plain asyncpg INSERTs, in the same run.

    .venv/bin/python bench/append.py [--seconds 4] [--rounds 3]

Measured, each for ``--seconds`` after a warm-up, rounds interleaved so drift on a noisy
machine hits every variant alike, medians printed:

(a) one event per append from 32 concurrent tasks: ``EventStore.append_independent``
    (a delivery: transaction, INSERT ... ON CONFLICT DO NOTHING RETURNING, xid8 default,
    NOTIFY) beside a plain single-row INSERT (autocommit) into ``plain_events``, a table
    of the same shape without xid8, triggers or ON CONFLICT;
(b) batches of 100 events: ``append_independent`` with 100 events beside one plain
    100-row ``INSERT ... SELECT FROM unnest(...)``, from ``--batch-tasks`` tasks;
(c) the ``GroupCommitter`` (what the HTTP path uses) with 32 and 64 concurrent single
    appends on a 16-connection pool (as ``serve`` runs it), beside plain single INSERTs
    from 32 and 64 connections.

Figures, not assertions. Goal (issue 2): (a) store/plain >= 0.70.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import _common as c
import asyncpg
import orjson

from hindsight.database import create_pool
from ingest.group_commit import GroupCommitter
from ingest.store import EventStore, NewEvent

Op = Callable[[], Awaitable[int]]


def new_event(bodies: c.Bodies) -> NewEvent:
    body = bodies.next()
    return NewEvent(
        stream=f"delivery-alertmanager-{uuid.uuid4().hex}",
        type="delivery.received",
        received_at=datetime.now(UTC),
        data=c.DELIVERY_DATA,
        metadata=c.DELIVERY_METADATA,
        body=body,
        idempotency_key=c.dedup_key(body),
    )


def plain_args(event: NewEvent) -> tuple[object, ...]:
    # Encoded per row exactly as the store's _columns does: orjson, text into jsonb.
    return (event.stream, 1, event.type, orjson.dumps(event.data).decode(),
            orjson.dumps(event.metadata).decode(), event.body, event.idempotency_key,
            event.occurred_at, event.received_at)


def plain_columns(events: list[NewEvent]) -> list[list[object]]:
    rows = [plain_args(e) for e in events]
    return [list(col) for col in zip(*rows, strict=True)]


async def drive(op: Op, tasks: int, seconds: float, warmup: float) -> float:
    """Events per second completed by ``tasks`` loops of ``op`` within the measured
    window (after ``warmup``); loops stop starting work when the window ends."""
    loop = asyncio.get_running_loop()
    start = loop.time() + warmup
    end = start + seconds
    counted = 0

    async def worker() -> None:
        nonlocal counted
        while loop.time() < end:
            n = await op()
            if start <= loop.time() <= end:
                counted += n

    await asyncio.gather(*(worker() for _ in range(tasks)))
    return counted / seconds


async def measure(url: str, variant: str, args: argparse.Namespace, bodies: c.Bodies) -> float:
    s, w = args.seconds, args.warmup
    if variant.startswith("plain"):
        tasks = {"plain-batch": args.batch_tasks, "plain-64": 64}.get(variant, args.tasks)
        pool = await asyncpg.create_pool(url, min_size=tasks, max_size=tasks)
        try:
            if variant == "plain-batch":
                async def op() -> int:
                    cols = plain_columns([new_event(bodies) for _ in range(args.batch)])
                    async with pool.acquire() as conn:
                        await conn.execute(c.PLAIN_INSERT_MANY, *cols)
                    return args.batch
            elif variant == "plain-tx":
                async def op() -> int:
                    values = plain_args(new_event(bodies))
                    async with pool.acquire() as conn, conn.transaction():
                        await conn.execute(c.PLAIN_INSERT, *values)
                    return 1
            else:
                async def op() -> int:
                    values = plain_args(new_event(bodies))
                    async with pool.acquire() as conn:
                        await conn.execute(c.PLAIN_INSERT, *values)
                    return 1
            return await drive(op, tasks, s, w)
        finally:
            await pool.close()

    if variant in ("store-single", "store-batch"):
        tasks = args.tasks if variant == "store-single" else args.batch_tasks
        pool = await create_pool(url, min_size=tasks, max_size=tasks)
        store = EventStore(pool)
        try:
            size = 1 if variant == "store-single" else args.batch

            async def op() -> int:
                await store.append_independent([new_event(bodies) for _ in range(size)])
                return size

            return await drive(op, tasks, s, w)
        finally:
            await pool.close()

    # group-N: the committer as serve wires it (16 connections, 2 ms window).
    tasks = int(variant.rsplit("-", 1)[1])
    pool = await create_pool(url, min_size=2, max_size=16)
    committer = GroupCommitter(EventStore(pool), max_wait=0.002)
    committer.start()
    try:
        async def op() -> int:
            await committer.append(new_event(bodies))
            return 1

        return await drive(op, tasks, s, w)
    finally:
        await committer.close()
        await pool.close()


async def main(args: argparse.Namespace) -> None:
    variants = ["plain-single", "store-single", "plain-tx", "plain-batch", "store-batch",
                "group-32", "plain-64", "group-64"]
    results: dict[str, list[float]] = {v: [] for v in variants}
    bodies = c.Bodies()
    async with c.databases() as dbs:
        url = await dbs.fresh("bench_append")
        print(f"# bench/append.py: {c.machine()}")
        print(f"# {await dbs.describe()}")
        print(f"# {args.rounds} rounds x {args.seconds:g} s per variant (after {args.warmup:g} s "
              f"warm-up), interleaved; medians. Load generator and PostgreSQL share the CPUs.")
        for r in range(1, args.rounds + 1):
            line = []
            for variant in variants:
                rate = await measure(url, variant, args, bodies)
                results[variant].append(rate)
                line.append(f"{variant}={rate:,.0f}")
            print(f"round {r}: " + "  ".join(line) + "  (events/s)", flush=True)

    m = {v: c.median(x) for v, x in results.items()}
    ratio_a = m["store-single"] / m["plain-single"]
    print()
    print(f"(a) single-event appends, {args.tasks} tasks:  store {m['store-single']:,.0f}/s  "
          f"plain INSERT {m['plain-single']:,.0f}/s  ratio {ratio_a:.2f}  "
          f"(goal >= 0.70: {c.goal(ratio_a >= 0.70)})")
    print(f"    for scale: plain INSERT in an explicit BEGIN/COMMIT, {args.tasks} tasks: "
          f"{m['plain-tx']:,.0f}/s ({m['plain-tx'] / m['plain-single']:.2f} of autocommit)")
    ratio_b = m["store-batch"] / m["plain-batch"]
    print(f"(b) batches of {args.batch}, {args.batch_tasks} tasks:  store {m['store-batch']:,.0f} "
          f"events/s  plain INSERT ... unnest {m['plain-batch']:,.0f} events/s  "
          f"ratio {ratio_b:.2f}")
    for n, plain in (("32", "plain-single"), ("64", "plain-64")):
        ratio = m[f"group-{n}"] / m[plain]
        print(f"(c) group commit, {n} concurrent single appends (16-connection pool, 2 ms window): "
              f"{m[f'group-{n}']:,.0f}/s  plain single INSERT from {n} connections "
              f"{m[plain]:,.0f}/s  ratio {ratio:.2f}")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=4.0, help="measured seconds per variant")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tasks", type=int, default=32, help="concurrent single appenders")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--batch-tasks", type=int, default=4, help="concurrent batch appenders")
    return p.parse_args()


if __name__ == "__main__":
    start = time.perf_counter()
    asyncio.run(main(parse()))
    print(f"# done in {time.perf_counter() - start:.0f} s")
