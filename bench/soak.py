"""Soak: a steady half-maximum load on the real server for minutes, watching errors,
latency and the server's memory.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate R] [--measure 20]

Starts ``hindsight serve`` in its own process on a free loopback port against a fresh
migrated database (as ``bench/ingest.py`` does; the projector runs in it, as in
production). Then:

1. unless ``--rate`` is given, measures the maximum: ``--concurrency`` closed loops post
   distinct Alertmanager deliveries for ``--measure`` seconds, then it waits for the
   projector (in the same process) to catch up; deliveries over (burst + catch-up) is
   the sustained maximum (the 2xx burst rate alone overstates it: the projector's work
   comes after);
2. posts at half that rate, open loop (requests start on schedule whatever the answers),
   for ``--minutes``, and prints per minute: requests, errors (any answer but 2xx, any
   connection error or timeout), p50/p99/max latency, the server process's RSS, and the
   projector lag from /metrics.

Goal (issue 7): no errors, and RSS growth after the first minute under 10 %.
Figures, not assertions. The load generator shares the machine's CPUs with the server
and PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import secrets
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _common as c
import aiohttp
import orjson

MAX_IN_FLIGHT = 2000  # past this the client itself is the bottleneck: counted as errors
SERVICES = 50
PER_EPISODE = 20


class Episodes:
    """Distinct Alertmanager deliveries shaped like real incidents: 50 services, each
    going through episodes of 19 firing notifications then one resolution 5 minutes
    later, 30 minutes of data time apart (past the 15-minute reopen window, so each
    episode is one incident). Data time starts 100 days back and advances about 60 hours
    per minute at 2,000 deliveries/s, so for any soak under an hour every resolved
    incident is past the engine's 30-day retention and leaves memory: this measures
    leaks in the request path and the projector's churn, not the working set that a
    month of incidents legitimately holds (which grows with the data, by design).
    ``--shape storm`` instead sends bench/_common.Bodies (every alert in one service at
    one moment: a single ever-growing incident)."""

    def __init__(self) -> None:
        self.base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=100)
        self.counter = 0
        self.tag = secrets.token_hex(3)

    def next(self) -> bytes:
        n = self.counter
        self.counter += 1
        service, rest = n % SERVICES, n // SERVICES
        episode, seq = divmod(rest, PER_EPISODE)
        start = self.base + timedelta(minutes=30 * episode)
        resolved = seq == PER_EPISODE - 1
        stamp = "%Y-%m-%dT%H:%M:%SZ"
        alert = {
            "status": "resolved" if resolved else "firing",
            "labels": {"alertname": "HighErrorRate", "service": f"svc-{service:02d}",
                       "instance": f"10.0.{service}.1:8080", "severity": "critical"},
            "annotations": {"summary": f"5xx above 5% ({self.tag} #{n})"},
            "startsAt": start.strftime(stamp),
            "endsAt": ((start + timedelta(minutes=5)).strftime(stamp) if resolved
                       else "0001-01-01T00:00:00Z"),
            "generatorURL": "http://prometheus.example/graph",
            "fingerprint": f"{service:04x}{episode:08x}",
        }
        return orjson.dumps({
            "version": "4", "groupKey": f"{{}}:{{service=svc-{service:02d}}}",
            "truncatedAlerts": 0, "status": alert["status"], "receiver": "oncall",
            "groupLabels": {"service": f"svc-{service:02d}"}, "commonLabels": alert["labels"],
            "commonAnnotations": {}, "externalURL": "http://alertmanager.example",
            "alerts": [alert]})


def rss_mib(pid: int) -> float:
    """Resident set size of a process in MiB (0 when it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else 0.0


@dataclass
class Minute:
    sent: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)

    def fail(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


async def post_one(session: aiohttp.ClientSession, url: str, token: str, body: bytes,
                   bucket: Minute, loop: asyncio.AbstractEventLoop) -> None:
    t0 = loop.time()
    try:
        async with session.post(url, data=body, headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json"}) as resp:
            await resp.read()
            status = resp.status
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        bucket.fail(type(exc).__name__)
        return
    if 200 <= status < 300:
        bucket.latencies.append(loop.time() - t0)
    else:
        bucket.fail(str(status))


async def measure_max(url: str, token: str, bodies: c.Bodies | Episodes, seconds: float,
                      concurrency: int) -> float:
    loop = asyncio.get_running_loop()
    bucket = Minute()
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        end = loop.time() + seconds

        async def worker() -> None:
            while loop.time() < end:
                await post_one(session, url, token, bodies.next(), bucket, loop)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(bucket.latencies) / seconds


async def metric(session: aiohttp.ClientSession, base: str, name: str) -> float | None:
    with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
        async with session.get(f"{base}/metrics") as resp:
            text = await resp.text()
        match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else None
    return None


async def wait_projected(base: str, within: float = 300.0) -> float:
    """Seconds until the projector's lag is back under 100 events."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with aiohttp.ClientSession() as session:
        while loop.time() - started < within:
            lag = await metric(session, base, "hindsight_projector_lag_events")
            if lag is not None and lag < 100:
                break
            await asyncio.sleep(0.5)
    return loop.time() - started


async def soak(base: str, token: str, pid: int, bodies: c.Bodies | Episodes, rate: float,
               minutes: int) -> list[tuple[Minute, float]]:
    url = f"{base}/v1/webhooks/alertmanager"
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT)
    timeout = aiohttp.ClientTimeout(total=10)
    results: list[tuple[Minute, float]] = []
    in_flight: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = loop.time()
        launched = 0
        for minute in range(1, minutes + 1):
            bucket = Minute()
            minute_end = start + 60 * minute
            while (now := loop.time()) < minute_end:
                due = int((now - start) * rate) - launched
                for _ in range(max(0, due)):
                    launched += 1
                    bucket.sent += 1
                    if len(in_flight) >= MAX_IN_FLIGHT:
                        bucket.fail("client_overloaded")
                        continue
                    task = asyncio.create_task(
                        post_one(session, url, token, bodies.next(), bucket, loop))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                await asyncio.sleep(0.005)
            if in_flight:  # this minute's answers complete the minute's figures
                await asyncio.wait(set(in_flight), timeout=15)
            rss = rss_mib(pid)
            lag = await metric(session, base, "hindsight_projector_lag_events")
            results.append((bucket, rss))
            ordered = sorted(bucket.latencies)
            kinds = f" {bucket.error_kinds}" if bucket.error_kinds else ""
            lag_text = "?" if lag is None else f"{lag:,.0f}"
            print(f"minute {minute:>2}: {bucket.sent:>7,} requests  errors {bucket.errors}{kinds}"
                  f"  p50 {1000 * c.percentile(ordered, 0.5):6.1f} ms"
                  f"  p99 {1000 * c.percentile(ordered, 0.99):6.1f} ms"
                  f"  max {1000 * (ordered[-1] if ordered else float('nan')):6.1f} ms"
                  f"  server RSS {rss:6.1f} MiB  projector lag {lag_text} events", flush=True)
    return results


async def main(args: argparse.Namespace) -> None:
    token = secrets.token_urlsafe(24)
    async with c.databases() as dbs:
        db_url = await dbs.fresh("bench_soak")
        print(f"# bench/soak.py: {c.machine()}, aiohttp {aiohttp.__version__}")
        print(f"# {await dbs.describe()}")
        with tempfile.TemporaryDirectory(prefix="hindsight-soak-") as tmp:
            proc, base, log = c.launch_server(Path(tmp), db_url, token, args.log_level)
            try:
                await c.wait_ready(base, proc, log)
                print(f"# server: `hindsight serve` pid {proc.pid} on {base}, "
                      f"log_level={args.log_level}, projector on; shape {args.shape}", flush=True)
                bodies: c.Bodies | Episodes = c.Bodies() if args.shape == "storm" else Episodes()
                url = f"{base}/v1/webhooks/alertmanager"
                if args.rate:
                    rate = args.rate
                    print(f"# rate given: {rate:,.0f}/s", flush=True)
                else:
                    top = await measure_max(url, token, bodies, args.measure, args.concurrency)
                    catch_up = await wait_projected(base)
                    # The projector folds in the same process: the rate the whole service
                    # sustains counts the time it needs to catch up after the burst.
                    sustained = top * args.measure / (args.measure + catch_up)
                    rate = sustained / 2
                    print(f"# measured maximum over {args.measure:g} s "
                          f"({args.concurrency} closed loops): {top:,.0f}/s ingest; the "
                          f"projector caught up {catch_up:.1f} s later, so "
                          f"{sustained:,.0f}/s sustained; soaking at half: {rate:,.0f}/s",
                          flush=True)
                print(f"# server RSS before the soak: {rss_mib(proc.pid):.1f} MiB", flush=True)
                results = await soak(base, token, proc.pid, bodies, rate, args.minutes)
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
                    try:
                        await asyncio.to_thread(proc.wait, 20)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        await asyncio.to_thread(proc.wait)
    errors = sum(m.errors for m, _ in results)
    sent = sum(m.sent for m, _ in results)
    print()
    print(f"total: {sent:,} requests at {rate:,.0f}/s, errors {errors} "
          f"(goal 0: {c.goal(errors == 0)})")
    if len(results) >= 2:
        first, last = results[0][1], results[-1][1]
        peak = max(r for _, r in results[1:])
        growth = 100 * (last - first) / first if first else float("nan")
        print(f"server RSS after minute 1: {first:.1f} MiB, at the end: {last:.1f} MiB, "
              f"peak after minute 1: {peak:.1f} MiB; growth {growth:+.1f} % "
              f"(goal < 10 %: {c.goal(growth < 10)})")
        # A leak keeps growing; warm-up (caches, the projector's state) levels off.
        middle = results[len(results) // 2][1]
        second_half = 100 * (last - middle) / middle if middle else float("nan")
        print(f"server RSS over the second half (minute {len(results) // 2 + 1} to the end): "
              f"{middle:.1f} -> {last:.1f} MiB, {second_half:+.1f} %")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=int, default=10, help="soak length (default 10)")
    p.add_argument("--rate", type=float, default=0.0,
                   help="deliveries per second; default: half the measured maximum")
    p.add_argument("--measure", type=float, default=20.0,
                   help="seconds to measure the maximum rate (default 20)")
    p.add_argument("--concurrency", type=int, default=64, help="closed loops when measuring")
    p.add_argument("--shape", default="episodes", choices=["episodes", "storm"],
                   help="episodes: incidents of 20 deliveries (default); storm: one endless one")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="the server's log level (default: serve's default, info)")
    return p.parse_args()


if __name__ == "__main__":
    started = time.perf_counter()
    asyncio.run(main(parse()))
    print(f"# done in {time.perf_counter() - started:.0f} s")
