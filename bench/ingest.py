"""Webhook deliveries per second through the real server, beside bare single-row INSERTs.

    .venv/bin/python bench/ingest.py [--duration 20] [--rounds 3] [--concurrency 64]

Starts ``hindsight serve`` in its own process on a free loopback port, against a fresh
migrated database, with a config granting an ``alertmanager`` token. Then, per round:

1. HTTP: ``--concurrency`` loops (one aiohttp ClientSession, TCPConnector(limit=64)) post
   distinct, realistic Alertmanager deliveries for ``--duration`` seconds; only 2xx
   answers (sent after the delivery's commit) count; p50/p99 latency of those;
2. bare: single-row INSERT transactions (autocommit) of the same row (body included)
   into a table of the event table's shape from ``--concurrency`` connections, for the
   same duration, from this process.

Rounds alternate the two; medians are printed. The load generator runs in this process
and shares the machine's CPUs with the server and PostgreSQL: the CPU each used is shown.
Figures, not assertions. Goals (issue 3): >= 5,000 deliveries/s, p99 < 100 ms,
>= 0.6x the bare INSERT rate. Finally the server's /metrics group-commit batch sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import _common as c
import aiohttp
import asyncpg
import orjson

TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def postgres_cpu() -> float:
    """CPU seconds used by every live process named postgres (the cluster's backends)."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if Path(entry.path, "comm").read_text().strip() == "postgres":
                total += process_cpu(int(entry.name))
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Cpu:
    """CPU used during a window, in % of one core: server, load generator, postgres."""

    server_pid: int | None
    marks: list[float] = field(default_factory=list)

    def _read(self) -> list[float]:
        busy, total = machine_busy()
        return [time.perf_counter(), process_cpu(self.server_pid) if self.server_pid else 0.0,
                time.process_time(), postgres_cpu(), busy, total]

    def start(self) -> None:
        self.marks = self._read()

    def stop(self) -> str:
        end = self._read()
        d = [b - a for a, b in zip(self.marks, end, strict=True)]
        wall = d[0]
        machine = 100 * d[4] / d[5] if d[5] else float("nan")
        ours = [100 * d[i] / wall for i in (1, 2, 3)]
        parts = []
        if self.server_pid:
            parts.append(f"server {ours[0]:.0f}%")
        parts += [f"load generator {ours[1]:.0f}%", f"postgres {ours[2]:.0f}%"]
        # Everything else on the machine (other users' jobs, the kernel's own threads).
        others = machine * (os.cpu_count() or 1) - sum(ours)
        return (f"CPU (% of one core): {', '.join(parts)}, everything else {others:.0f}%; "
                f"machine busy {machine:.0f}% of {os.cpu_count()} cores")


@dataclass
class Result:
    rate: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]
    cpu: str


def summarise(latencies: list[float], count: int, seconds: float,
              statuses: dict[str, int], cpu: str) -> Result:
    latencies.sort()
    return Result(count / seconds, 1000 * c.percentile(latencies, 0.50),
                  1000 * c.percentile(latencies, 0.99), statuses, cpu)


async def closed_loop(args: argparse.Namespace, cpu: Cpu,
                      call: Callable[[], Awaitable[str]]) -> Result:
    """``args.concurrency`` workers repeating ``call`` (which returns a status) for the
    warm-up and then ``args.duration``; only calls wholly inside the measured window count,
    and only 2xx or "ok" ones add a latency."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    start = loop.time() + args.warmup
    end = start + args.duration
    started = False

    async def worker() -> None:
        nonlocal started
        while True:
            t0 = loop.time()
            if t0 >= end:
                return
            if not started and t0 >= start:
                started = True
                cpu.start()
            status = await call()
            t1 = loop.time()
            if t0 >= start and t1 <= end:
                statuses[status] = statuses.get(status, 0) + 1
                if status.startswith("2") or status == "ok":
                    latencies.append(t1 - t0)

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    usage = cpu.stop()
    return summarise(latencies, len(latencies), args.duration, statuses, usage)


async def http_round(url: str, token: str, bodies: c.Bodies, args: argparse.Namespace,
                     cpu: Cpu) -> Result:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
               "User-Agent": "Alertmanager/0.27.0"}
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post() -> str:
            try:
                async with session.post(url, data=bodies.next(), headers=headers) as resp:
                    await resp.read()
                    return str(resp.status)
            except (aiohttp.ClientError, OSError) as exc:
                return type(exc).__name__

        return await closed_loop(args, cpu, post)


async def insert_round(db_url: str, bodies: c.Bodies, args: argparse.Namespace) -> Result:
    n = args.concurrency
    pool = await asyncpg.create_pool(db_url, min_size=n, max_size=n)
    data = orjson.dumps(c.DELIVERY_DATA).decode()

    async def insert() -> str:
        body = bodies.next()
        # What ingest computes per delivery before writing: dedup hash, JSON text.
        values = (f"delivery-alertmanager-{uuid.uuid4().hex}", 1, "delivery.received",
                  data, orjson.dumps(c.DELIVERY_METADATA).decode(), body,
                  c.dedup_key(body), None, datetime.now(UTC))
        async with pool.acquire() as conn:
            await conn.execute(c.PLAIN_INSERT, *values)
        return "ok"

    try:
        return await closed_loop(args, Cpu(None), insert)
    finally:
        await pool.close()


def batch_histogram(metrics: str) -> str | None:
    """hindsight_group_commit_batch_size as one line: batches, mean and the buckets."""
    buckets: list[tuple[str, float]] = []
    total = count = None
    for line in metrics.splitlines():
        if line.startswith("hindsight_group_commit_batch_size_bucket"):
            match = re.search(r'le="([^"]+)"\}\s+(\S+)', line)
            if match:
                buckets.append((match.group(1), float(match.group(2))))
        elif line.startswith("hindsight_group_commit_batch_size_sum"):
            total = float(line.split()[-1])
        elif line.startswith("hindsight_group_commit_batch_size_count"):
            count = float(line.split()[-1])
    if count is None or total is None:
        return None
    if not count:
        return "hindsight_group_commit_batch_size: no batches observed"
    previous = 0.0
    parts = []
    for le, cumulative in buckets:
        if cumulative - previous:
            parts.append(f"<={le}: {100 * (cumulative - previous) / count:.0f}%")
        previous = cumulative
    median_le = next((le for le, cum in buckets if cum >= count / 2), "?")
    return (f"hindsight_group_commit_batch_size: {count:,.0f} batches, "
            f"{total:,.0f} deliveries, mean {total / count:.1f}, median bucket <= {median_le}; "
            f"distribution {', '.join(parts)}")


def request_histogram(metrics: str) -> str | None:
    """Server-side latency of 2xx webhook answers, from hindsight_request_seconds."""
    buckets: list[tuple[str, float]] = []
    for line in metrics.splitlines():
        if (line.startswith("hindsight_request_seconds_bucket") and "webhooks" in line
                and 'status="2xx"' in line):
            match = re.search(r'le="([^"]+)"\}\s+(\S+)', line)
            if match:
                buckets.append((match.group(1), float(match.group(2))))
    if not buckets or not buckets[-1][1]:
        return None
    count = buckets[-1][1]
    p50 = next(le for le, cum in buckets if cum >= 0.5 * count)
    p99 = next(le for le, cum in buckets if cum >= 0.99 * count)
    return (f"hindsight_request_seconds (server side, webhook 2xx): {count:,.0f} requests, "
            f"p50 <= {p50} s, p99 <= {p99} s (bucket bounds)")


def line(name: str, r: Result) -> str:
    return (f"{name} {r.rate:,.0f}/s  p50 {r.p50_ms:.1f} ms  p99 {r.p99_ms:.1f} ms")


async def main(args: argparse.Namespace) -> None:
    token = secrets.token_urlsafe(24)
    async with c.databases() as dbs:
        db_url = await dbs.fresh("bench_ingest")
        print(f"# bench/ingest.py: {c.machine()}, aiohttp {aiohttp.__version__}")
        print(f"# {await dbs.describe()}")
        print(f"# {args.rounds} rounds x {args.duration:g} s (after {args.warmup:g} s warm-up), "
              f"concurrency {args.concurrency}; HTTP and bare INSERT rounds alternate; medians.")
        print("# NOTE: the load generator (this process), the server (one process) and "
              "PostgreSQL share this machine's CPUs; the CPU each used is shown per round.")
        with tempfile.TemporaryDirectory(prefix="hindsight-bench-") as tmp:
            proc, base, log = c.launch_server(Path(tmp), db_url, token, args.log_level,
                                     not args.no_projector)
            http: list[Result] = []
            bare: list[Result] = []
            metrics = ""
            try:
                await c.wait_ready(base, proc, log)
                what = ("`hindsight serve --no-projector`" if args.no_projector
                        else "`hindsight serve` (projector included)")
                print(f"# server: {what}, pid {proc.pid} on {base}, "
                      f"log_level={args.log_level} (logs to a temp file)")
                bodies = c.Bodies()
                for r in range(1, args.rounds + 1):
                    h = await http_round(f"{base}/v1/webhooks/alertmanager", token, bodies,
                                         args, Cpu(proc.pid))
                    http.append(h)
                    print(f"round {r}: {line('HTTP deliveries', h)}  answers {h.statuses}",
                          flush=True)
                    print(f"         {h.cpu}", flush=True)
                    b = await insert_round(db_url, bodies, args)
                    bare.append(b)
                    print(f"round {r}: {line('bare INSERT txns', b)}", flush=True)
                    print(f"         {b.cpu}", flush=True)
                async with aiohttp.ClientSession() as session, \
                        session.get(f"{base}/metrics") as resp:
                    metrics = await resp.text()
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
                    try:
                        await asyncio.to_thread(proc.wait, 20)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        await asyncio.to_thread(proc.wait)

    rate = c.median([h.rate for h in http])
    p50 = c.median([h.p50_ms for h in http])
    p99 = c.median([h.p99_ms for h in http])
    bare_rate = c.median([b.rate for b in bare])
    ratio = rate / bare_rate
    print()
    print(f"HTTP deliveries (2xx, committed): {rate:,.0f}/s (goal >= 5,000: "
          f"{c.goal(rate >= 5000)})  p50 {p50:.1f} ms  p99 {p99:.1f} ms (goal < 100 ms: "
          f"{c.goal(p99 < 100)})")
    print(f"bare single-row INSERT txns, {args.concurrency} connections: {bare_rate:,.0f}/s  "
          f"p50 {c.median([b.p50_ms for b in bare]):.1f} ms  "
          f"p99 {c.median([b.p99_ms for b in bare]):.1f} ms")
    print(f"ratio HTTP / bare INSERT: {ratio:.2f} (goal >= 0.6: {c.goal(ratio >= 0.6)})")
    for summary in (batch_histogram(metrics), request_histogram(metrics)):
        if summary:
            print(summary)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per round")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="the server's log level (default: serve's default, info)")
    p.add_argument("--no-projector", action="store_true",
                   help="serve without the projector (create_app(projector=False)) to measure "
                        "the ingest path alone; default: the real `hindsight serve`")
    return p.parse_args()


if __name__ == "__main__":
    started = time.perf_counter()
    asyncio.run(main(parse()))
    print(f"# done in {time.perf_counter() - started:.0f} s")
