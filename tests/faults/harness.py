"""Real processes for the fault tests: ``hindsight serve`` as a subprocess on a free
loopback port, a load client that retries whatever got no 2xx, deliveries shaped like
incidents, and what the read models are compared by.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from tests.helpers import API_TOKEN, SECRETS, TOKENS

ROOT = Path(__file__).resolve().parents[2]
SERVICES = 50
EPISODES = 5
PER_EPISODE = 20  # 50 x 5 x 20 = 5,000 deliveries
# The alerts' own times: recent (a day back, fixed for the session) so that receipt
# times stay within the engine's 30-day retention (see test_findings.py).
DATA_START = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
# Fields that depend on when a delivery reached us (receipt time) or where it landed in
# the log (interleaving with other services' deliveries), not on what it said: two runs
# of the same deliveries differ in these and in nothing else.
ARRIVAL_FIELDS = frozenset({"detected_at", "detection_latency_seconds", "detection_verdict",
                            "detected_by", "received_at", "position", "version",
                            "last_repeat_at"})  # the latest report of a repeat: when it came


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_config(path: Path, log_level: str = "info") -> Path:
    """A config with the test credentials (tests/helpers.py) for every source."""
    lines = [f'log_level = "{log_level}"', "", "[api]", f'tokens = ["{API_TOKEN}"]', ""]
    for source in sorted(set(TOKENS) | set(SECRETS)):
        lines.append(f'[sources."{source}"]')
        if source in TOKENS:
            lines.append(f'token = "{TOKENS[source]}"')
        if source in SECRETS:
            lines.append(f'secret = "{SECRETS[source]}"')
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@dataclass
class Serve:
    """One ``hindsight serve`` process."""

    name: str
    config: Path
    database_url: str
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    extra: tuple[str, ...] = ()  # more serve options, e.g. ("--workers", "3")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> None:
        """Start (or restart, on the same port) the process; its output goes to the log."""
        self.starts += 1
        env = {**os.environ, "HINDSIGHT_DATABASE_URL": self.database_url,
               "HINDSIGHT_DATA_DIR": str(self.workdir / "data")}
        env.pop("HINDSIGHT_CONFIG", None)
        command = [sys.executable, "-m", "hindsight.cli", "--config", str(self.config),
                   "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.extra]
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts} ---\n".encode())
            out.flush()
            self.proc = subprocess.Popen(command, cwd=ROOT, env=env,  # noqa: S603
                                         stdout=out, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()

    def children(self) -> dict[str, int]:
        """The live children of this serve, by name ("projector", "http-0", ...), as its
        supervisor logged their starts (the latest start of each name)."""
        if self.proc is None:
            return {}
        named: dict[str, int] = {}
        for line in self.log.read_text(errors="replace").splitlines():
            if '"child_started"' in line:
                with contextlib.suppress(orjson.JSONDecodeError):
                    entry = orjson.loads(line)
                    named[entry["child"]] = entry["pid"]
        return {name: pid for name, pid in named.items()
                if parent_of(pid) == self.proc.pid}

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    async def wait_ready(self, within: float = 90.0) -> None:
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if not self.alive():
                    raise AssertionError(f"{self.name} exited; its log:\n{self.tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with session.get(f"{self.base}/readyz",
                                           timeout=aiohttp.ClientTimeout(total=2)) as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} not ready within {within} s; log:\n{self.tail()}")

    async def metric(self, name: str) -> float | None:
        async with aiohttp.ClientSession() as session, session.get(
                f"{self.base}/metrics", timeout=aiohttp.ClientTimeout(total=5)) as resp:
            text = await resp.text()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return None


def parent_of(pid: int) -> int | None:
    """The parent pid of a live process; None once it is gone (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return None if state == "Z" else int(ppid)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def alert_delivery(service: int, episode: int, seq: int) -> bytes:
    """One Alertmanager notification: episodes of ``PER_EPISODE - 1`` firing
    notifications then a resolution, two hours of data time apart, so every episode is
    one incident whatever order the services' deliveries interleave in."""
    start = DATA_START + timedelta(hours=2 * episode, seconds=service)
    resolved = seq == PER_EPISODE - 1
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    name = f"svc-{service:02d}"
    alert = {
        "status": "resolved" if resolved else "firing",
        "labels": {"alertname": "HighErrorRate", "service": name,
                   "instance": f"10.0.{service}.1:8080", "severity": "critical"},
        "annotations": {"summary": f"5xx ratio above 5% (notification {seq})"},
        "startsAt": start.strftime(stamp),
        "endsAt": (start + timedelta(minutes=30)).strftime(stamp) if resolved
        else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph",
        "fingerprint": f"{service:04x}{episode:04x}",
    }
    return orjson.dumps({
        "version": "4", "groupKey": f"{{}}:{{service={name}}}", "truncatedAlerts": 0,
        "status": alert["status"], "receiver": "oncall", "groupLabels": {"service": name},
        "commonLabels": alert["labels"], "commonAnnotations": {},
        "externalURL": "http://alertmanager.example", "alerts": [alert]})


def deliveries(services: int = SERVICES, episodes: int = EPISODES) -> list[list[bytes]]:
    """Per service, its deliveries in data-time order (one client worker each)."""
    return [[alert_delivery(s, e, q) for e in range(episodes) for q in range(PER_EPISODE)]
            for s in range(services)]


@dataclass
class Answer:
    status: int | None  # None: no answer (connection refused or reset, timeout)
    seconds: float
    at: float           # loop time the request started
    body: dict[str, Any] | None = None
    base: str = ""      # which server was asked


class Load:
    """Posts every body, each worker its own list in order, at full speed. A body that
    gets no 2xx is retried (after a short pause) until it does, before the worker moves
    on, as a monitoring tool's retry queue would. ``bases(worker, attempt)`` picks the
    server for each try."""

    def __init__(self, work: Sequence[Sequence[bytes]], bases: Callable[[int, int], str],
                 *, deadline: float = 180.0, request_timeout: float = 10.0,
                 pause: float = 0.0) -> None:
        self.work = work
        self.pause = pause  # seconds each worker waits between deliveries (0: full speed)
        self.bases = bases
        self.deadline = deadline
        self.request_timeout = request_timeout
        self.answers: dict[bytes, list[Answer]] = {}
        self.answered_2xx = 0
        self.progress = asyncio.Event()

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.request_timeout)
        connector = aiohttp.TCPConnector(limit=len(self.work) + 8, force_close=False)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            await asyncio.wait_for(
                asyncio.gather(*(self._worker(session, w, bodies)
                                 for w, bodies in enumerate(self.work))),
                self.deadline)

    async def _worker(self, session: aiohttp.ClientSession, worker: int,
                      bodies: Sequence[bytes]) -> None:
        loop = asyncio.get_running_loop()
        headers = {"Authorization": f"Bearer {TOKENS['alertmanager']}",
                   "Content-Type": "application/json"}
        for body in bodies:
            attempt = 0
            while True:
                base = self.bases(worker, attempt)
                url = f"{base}/v1/webhooks/alertmanager"
                attempt += 1
                t0 = loop.time()
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        payload = await resp.read()
                        answer = Answer(resp.status, loop.time() - t0, t0,
                                        orjson.loads(payload) if payload else None, base)
                except (aiohttp.ClientError, OSError, TimeoutError):
                    answer = Answer(None, loop.time() - t0, t0, base=base)
                self.answers.setdefault(body, []).append(answer)
                if answer.status is not None and 200 <= answer.status < 300:
                    self.answered_2xx += 1
                    self.progress.set()
                    break
                await asyncio.sleep(0.1)
            if self.pause:
                await asyncio.sleep(self.pause)

    def all_answers(self) -> list[Answer]:
        return [a for answers in self.answers.values() for a in answers]


async def wait_until(answered: Callable[[], bool], load: Load, task: asyncio.Task[None]) -> None:
    while not answered():
        if task.done():
            await task
            return
        load.progress.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(load.progress.wait(), 1.0)


async def fetch(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def count(database_url: str, sql: str) -> int:
    """The one integer a ``SELECT count(*) …`` answers."""
    [row] = await fetch(database_url, sql)
    return int(row[0])


async def until(check: Callable[[], Awaitable[bool]], seconds: float) -> bool:
    """Whether ``check`` came true within ``seconds`` (polled every 50 ms)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


async def wait_projected(database_url: str, within: float = 180.0) -> int:
    """Until the projector's checkpoint has counted every event in the log."""
    deadline = time.monotonic() + within
    while True:
        rows = await fetch(database_url,
                           "SELECT (SELECT count(*) FROM events) AS total, "
                           "(SELECT coalesce(max(events), 0) FROM projector_checkpoint) AS done")
        total, done = rows[0]["total"], rows[0]["done"]
        if total and done == total:
            return int(total)
        if time.monotonic() > deadline:
            raise AssertionError(f"projected {done} of {total} events within {within} s")
        await asyncio.sleep(0.25)


async def incidents(base: str) -> list[dict[str, Any]]:
    """Every incident with its timeline, as the read API answers."""
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{base}/v1/incidents?limit=1000") as resp:
            assert resp.status == 200, await resp.text()
            listing = (await resp.json())["incidents"]
        out = []
        for summary in listing:
            async with session.get(f"{base}/v1/incidents/{summary['id']}") as resp:
                assert resp.status == 200, await resp.text()
                out.append(await resp.json())
    return out


def comparable(value: Any) -> Any:
    """The read model without what depends on receipt time, in a stable order."""
    if isinstance(value, dict):
        # The "detected" timeline entry is the moment a monitor's alert reached us.
        skip = ARRIVAL_FIELDS | ({"at"} if value.get("marker") == "detected" else set())
        return {k: comparable(v) for k, v in sorted(value.items()) if k not in skip}
    if isinstance(value, list):
        items = [comparable(v) for v in value]
        if items and all(isinstance(i, dict) and "id" in i for i in items):
            return sorted(items, key=lambda i: str(i["id"]))
        return items
    return value


async def stored_bodies(database_url: str) -> list[bytes]:
    rows = await fetch(database_url,
                       "SELECT body FROM events WHERE type = 'delivery.received'")
    return [bytes(r["body"]) for r in rows]


def differences(got: list[dict[str, Any]], want: list[dict[str, Any]], limit: int = 5) -> str:
    """A short account of how two incident lists differ (for assertion messages)."""
    a = {i["id"]: comparable(i) for i in got}
    b = {i["id"]: comparable(i) for i in want}
    lines = [f"{len(a)} incidents vs {len(b)} expected"]
    lines += [f"unexpected {i}" for i in sorted(set(a) - set(b))[:limit]]
    lines += [f"missing {i}: {b[i]}" for i in sorted(set(b) - set(a))[:limit]]
    for inc_id in sorted(set(a) & set(b)):
        if a[inc_id] != b[inc_id]:
            keys = sorted(k for k in set(a[inc_id]) | set(b[inc_id])
                          if a[inc_id].get(k) != b[inc_id].get(k))
            lines.append(f"{inc_id}: " + "; ".join(
                _first_difference(k, a[inc_id].get(k), b[inc_id].get(k)) for k in keys))
            if len(lines) > 2 * limit:
                break
    return "\n".join(lines)


def _first_difference(path: str, a: Any, b: Any) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(f"{path}.{k}", a.get(k), b.get(k))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(f"{path}[{n}]", x, y)
    return f"{path}: {str(a)[:200]} != {str(b)[:200]}"
