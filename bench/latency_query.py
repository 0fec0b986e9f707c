"""GET /v1/detection-latency over 100,000 incidents (issue 6). Goal: p50 under 100 ms.

Seeds the ``incidents`` read model directly (the projector is not measured here): about
two years of incidents over 40 services, 9 sources and 4 severities, latencies spread
log-normally from seconds to hours, 2% merged away and 1% never detected. Then starts
the real application (``create_app``, no projector) on a loopback port and times, per
grouping (``week`` and ``service``, over all time and over the last 90 days), ``--requests``
sequential requests through HTTP with the API token, beside the same SQL run directly on
one connection. Prints p50 and p99 of each.

    .venv/bin/python bench/latency_query.py [--incidents 100000] [--requests 50]

Which PostgreSQL: ``HINDSIGHT_BENCH_DATABASE_URL`` when set, else the embedded server
under ``.hindsight/bench-pg`` (started and stopped here), as the other benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import socket
import sys
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
from _common import databases, goal, machine, percentile  # puts the repository on the path
from aiohttp import ClientSession, web

SOURCES = ["alertmanager", "grafana", "uptime-kuma", "uptimerobot", "betterstack",
           "healthchecks", "cronitor", "pagerduty", "native"]
KINDS = ["alert", "uptime", "cron", "ssl"]
TOKEN = "bench-api-token-0123"  # noqa: S105  (a throwaway server on loopback)


async def seed(url: str, count: int) -> None:
    rng = random.Random(6)
    end = datetime(2025, 3, 16, tzinfo=UTC)
    span = timedelta(days=730).total_seconds()
    records = []
    for n in range(count):
        started = end - timedelta(seconds=rng.random() * span)
        latency = min(math.exp(rng.gauss(4.5, 1.6)), 6 * 3600.0)
        detected = None if n % 100 == 7 else started + timedelta(seconds=latency)
        source = rng.choice(SOURCES)
        human = rng.random() < 0.03
        severity = rng.choice(["P1", "P2", "P2", "P3", "P3", "P3", "P4"])
        service = f"service-{rng.randrange(40):02d}"
        kinds = sorted({rng.choice(KINDS) for _ in range(rng.randint(1, 2))})
        inc_id = f"inc_{n:012x}"
        summary = {"id": inc_id, "title": f"{service}: HighErrorRate firing", "service": service,
                   "severity": severity, "kinds": kinds, "sources": [source]}
        doc = orjson.dumps({**summary, "timeline": [
            {"at": started.isoformat(), "marker": "started", "source": source,
             "text": "HighErrorRate firing on 10.42.3.17:8080 " * 4}]}).decode()
        records.append((
            inc_id, service, summary["title"], severity, "resolved", started, detected,
            None if detected is None else latency, "human" if human else "monitor",
            "ok", None if human else source, (f"inc_{n - 1:012x}" if n % 50 == 3 else None),
            orjson.dumps(summary).decode(), doc))
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "incidents", records=records,
            columns=["id", "service", "title", "severity", "status", "started_at",
                     "detected_at", "detection_latency_seconds", "detected_by",
                     "detection_verdict", "first_detector_source", "merged_into", "summary",
                     "doc"])
        # As autovacuum would soon after a busy projector: statistics and the visibility
        # map that lets the covering index answer without visiting the table.
        await conn.execute("VACUUM (ANALYZE) incidents")
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def measure(url: str, requests: int) -> None:
    from hindsight.app import create_app
    from hindsight.settings import load_settings
    from projections.web.latency import latency_sql

    settings = load_settings(environ={}, config=None)
    settings = settings.model_validate({**settings.model_dump(), "api": {"tokens": [TOKEN]},
                                        "log_level": "warning"})
    app = create_app(settings, database_url=url, projector=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    since = datetime(2025, 3, 16, tzinfo=UTC) - timedelta(days=90)
    cases = [("week", None), ("service", None), ("week", since), ("service", since)]
    conn = await asyncpg.connect(url)
    try:
        async with ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            print(f"{'grouping':<10} {'period':<13} {'rows':>5}  {'HTTP p50':>9} {'HTTP p99':>9}"
                  f"  {'SQL p50':>8} {'SQL p99':>8}")
            for group_by, start in cases:
                params = {"group_by": group_by}
                if start is not None:
                    params["since"] = start.isoformat().replace("+00:00", "Z")
                sql, args = latency_sql(group_by, start)
                for _ in range(3):  # warm-up: plans, caches, connections
                    async with http.get(f"http://127.0.0.1:{port}/v1/detection-latency",
                                        params=params) as resp:
                        body = await resp.json()
                    await conn.fetch(sql, *args)
                http_ms, sql_ms = [], []
                for _ in range(requests):
                    t0 = time.perf_counter()
                    async with http.get(f"http://127.0.0.1:{port}/v1/detection-latency",
                                        params=params) as resp:
                        body = await resp.json()
                    http_ms.append((time.perf_counter() - t0) * 1000)
                    t0 = time.perf_counter()
                    await conn.fetch(sql, *args)
                    sql_ms.append((time.perf_counter() - t0) * 1000)
                http_ms.sort()
                sql_ms.sort()
                p50 = percentile(http_ms, 0.5)
                period = "all time" if start is None else "last 90 days"
                print(f"{group_by:<10} {period:<13} {len(body['rows']):>5}  {p50:>7.1f}ms "
                      f"{percentile(http_ms, 0.99):>7.1f}ms  {percentile(sql_ms, 0.5):>6.1f}ms "
                      f"{percentile(sql_ms, 0.99):>6.1f}ms   goal p50 < 100 ms: {goal(p50 < 100)}")
    finally:
        await conn.close()
        await runner.cleanup()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    async with databases() as dbs:
        print(await dbs.describe())
        print(machine())
        url = await dbs.fresh("latency")
        t0 = time.perf_counter()
        await seed(url, args.incidents)
        print(f"seeded {args.incidents:,} incidents in {time.perf_counter() - t0:.1f} s")
        await measure(url, args.requests)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
