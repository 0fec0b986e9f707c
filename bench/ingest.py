"""Webhook deliveries per second through the default ``hindsight serve``, beside bare
single-row INSERT transactions into the same PostgreSQL, and the projector's live lag.

    .venv/bin/python bench/ingest.py [--duration 20] [--rounds 3] [--connections 64]

Needs ``wrk`` and ``pgbench`` (C load generators: a Python client costs 260-400 µs of
CPU per request on this machine and caps what it measures; ``apt-get install wrk``).

Starts the default ``hindsight serve`` (the supervisor, its projector process and one
HTTP worker per core) on a free loopback port against a fresh migrated database, with a
config granting an ``alertmanager`` token. Then, per round, interleaved:

1. **HTTP**: ``wrk`` posts distinct, realistic Alertmanager deliveries (bench/_common's
   bodies, varied per request by a Lua script) from ``--connections`` connections for
   ``--duration`` s; only 2xx answers (sent after the delivery's commit) count;
2. **bare**: ``pgbench`` runs single-row INSERT transactions (autocommit) of the same
   row shape (body included) into a table of the event table's shape, from as many
   connections, for as long;
3. **live lag**: ``wrk`` paces deliveries at ``--lag-rate`` per second while this
   process posts a probe delivery every 0.2 s, each opening its own incident, and polls
   ``GET /v1/incidents/{id}`` until it answers 200: the lag is from the probe's 202
   (sent after its commit) to that first 200.

Medians of the rounds are printed against issue 11's goals (figures, not assertions):
durable deliveries/s >= 0.35x bare INSERT transactions, p99 < 100 ms, live lag < 1 s at
1,000 deliveries/s. CPU is counted per process family: the server (supervisor and its
children), the load generator, and only this run's PostgreSQL (its postmaster, its
live backends and the ones it has reaped), never other clusters on the machine.

``--breakdown`` adds, after each HTTP phase, CPU µs by component: each HTTP worker and
the PostgreSQL backends serving it per delivery stored, the projector and its backends
per event projected (the figures to compare on a shared machine, where rates are not).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import _common as c
import aiohttp
import asyncpg
import orjson

TICK = os.sysconf("SC_CLK_TCK")


def stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_of(pid: int, *, reaped: bool = False) -> float:
    """CPU seconds (user + system) of a process; with ``reaped``, of its waited-for
    children too (PostgreSQL's backends that have exited)."""
    f = stat_fields(pid)
    if f is None:
        return 0.0
    ticks = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if reaped else 0)
    return ticks / TICK


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            f = stat_fields(int(entry.name))
            if f is not None and int(f[1]) == pid:
                found.append(int(entry.name))
    return found


def family_cpu(pid: int) -> float:
    """A process and its children: the supervisor with its workers and projector, or
    a postmaster with its backends (and those it reaped)."""
    return cpu_of(pid, reaped=True) + sum(cpu_of(child) for child in children_of(pid))


def machine_busy() -> tuple[float, float]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Cpu:
    """CPU used during a window, in % of one core, per process family."""

    families: dict[str, int]  # name -> pid
    generator: str = "load generator"
    marks: dict[str, float] | None = None

    def _read(self) -> dict[str, float]:
        busy, total = machine_busy()
        out = {name: family_cpu(pid) for name, pid in self.families.items()}
        # wrk and pgbench are this process's children, reaped when they end: their CPU
        # is in RUSAGE_CHILDREN then (nothing else of ours is reaped meanwhile).
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        out[self.generator] = reaped.ru_utime + reaped.ru_stime
        out.update(_wall=time.perf_counter(), _busy=busy, _total=total)
        return out

    def start(self) -> None:
        self.marks = self._read()

    def stop(self) -> str:
        assert self.marks is not None
        end = self._read()
        d = {k: end[k] - self.marks[k] for k in end}
        ours = {k: 100 * d[k] / d["_wall"] for k in [*self.families, self.generator]}
        machine = 100 * d["_busy"] / d["_total"] if d["_total"] else float("nan")
        others = machine * (os.cpu_count() or 1) - sum(ours.values())
        return ("CPU (% of one core): " + ", ".join(f"{k} {v:.0f}%" for k, v in ours.items())
                + f", everything else {others:.0f}%; machine busy {machine:.0f}% of "
                  f"{os.cpu_count()} cores")


def child_roles(log: Path) -> dict[int, str]:
    """pid -> name of each child ``serve``'s supervisor started (its ``child_started``
    log lines: projector, http-0, http-1, ...)."""
    roles: dict[int, str] = {}
    for text in log.read_text(errors="replace").splitlines():
        child = re.search(r'"?child"?[=:] ?"?([\w-]+)', text)
        pid = re.search(r'"?pid"?[=:] ?(\d+)', text)
        if "child_started" in text and child and pid:
            roles[int(pid.group(1))] = child.group(1)
    return roles


def socket_peers() -> dict[int, int]:
    """pid -> pid at the other end of one of its local sockets (unix and TCP), from
    ``ss``: which of the server's processes each PostgreSQL backend serves."""
    ss = shutil.which("ss")
    if ss is None:
        raise SystemExit("--breakdown needs ss (apt-get install -y iproute2)")
    out = subprocess.run([ss, "-xtpnH"], capture_output=True, text=True,  # noqa: S603
                         check=False).stdout
    owner: dict[str, int] = {}
    peer_of: dict[str, str] = {}
    for text in out.splitlines():
        parts = text.split()
        found = re.search(r"pid=(\d+)", text)
        if found is None or len(parts) < 6:
            continue
        if parts[0] in ("u_str", "u_seq", "u_dgr"):  # unix: ... local inode peer inode
            local, peer = parts[5], parts[7] if len(parts) > 7 else ""
        else:  # tcp: state recv-q send-q local peer
            local, peer = parts[3], parts[4]
        owner[local] = int(found.group(1))
        peer_of[local] = peer
    peers: dict[int, int] = {}
    for local, pid in owner.items():
        other = owner.get(peer_of[local])
        if other is not None and other != pid:
            peers.setdefault(pid, other)
    return peers


class Breakdown:
    """``--breakdown``: CPU µs per delivery by component during a window: the supervisor,
    each child (projector, http-N), PostgreSQL's backends by the child they serve (matched
    through their sockets), and the rest of PostgreSQL (walwriter, checkpointer, exited
    backends, other clients). HTTP workers and their backends are divided by the
    deliveries stored in the window, the projector and its backends by the events it
    projected in it (its checkpoint's count)."""

    def __init__(self, server: int, pg: int, log: Path, db_url: str) -> None:
        self.server, self.pg, self.log, self.db_url = server, pg, log, db_url
        self.marks: dict[str, float] = {}

    def _cpu(self) -> dict[str, float]:
        roles = child_roles(self.log)
        out: dict[str, float] = {"supervisor": cpu_of(self.server)}
        for pid in children_of(self.server):
            out[roles.get(pid, str(pid))] = cpu_of(pid)
        peers = socket_peers()
        for pid in children_of(self.pg):
            client = peers.get(pid)
            key = f"postgres for {roles[client]}" if client in roles else "postgres, the rest"
            out[key] = out.get(key, 0.0) + cpu_of(pid)
        out["postgres, the rest"] = out.get("postgres, the rest", 0.0) + cpu_of(self.pg,
                                                                              reaped=True)
        return out

    async def _counts(self) -> tuple[int, int]:
        conn = await asyncpg.connect(self.db_url)
        try:
            row = await conn.fetchrow(
                """SELECT (SELECT count(*) FROM events) AS stored,
                          (SELECT coalesce(max(events), 0) FROM projector_checkpoint)
                          AS projected""")
        finally:
            await conn.close()
        return int(row["stored"]), int(row["projected"])

    async def start(self) -> None:
        stored, projected = await self._counts()
        self.marks = {**self._cpu(), "_stored": stored, "_projected": projected}

    async def stop(self) -> str:
        end = self._cpu()
        stored, projected = await self._counts()
        stored -= int(self.marks["_stored"])
        projected -= int(self.marks["_projected"])
        rows, total = [], 0.0
        for key in sorted(set(end) | {k for k in self.marks if not k.startswith("_")}):
            used = end.get(key, 0.0) - self.marks.get(key, 0.0)
            by_projected = "projector" in key
            n = projected if by_projected else stored
            per = 1e6 * used / n if n else float("nan")
            total += per
            rows.append(f"           {key:28s} {per:7.0f} µs per "
                        f"{'event projected' if by_projected else 'delivery stored'}")
        return (f"CPU breakdown: {stored} deliveries stored, {projected} events projected\n"
                + "\n".join(rows) + f"\n           {'in all':28s} {total:7.0f} µs")


LUA = r"""
-- Distinct Alertmanager deliveries: bench/_common.Bodies' templates; the startsAt
-- fraction makes each body (so each idempotency key) new, in every run of the script
-- (run_wrk passes each its own number: a body sent again would be a duplicate, answered
-- and stored as a copy at another cost), while fingerprints and
-- instances cycle through %(subjects)d per thread: alerts that repeat, resolve and come
-- back, as a real fleet's do, not a new incident per delivery.
local templates = {%(templates)s}
local token, tag, rate = "%(token)s", "%(tag)s", %(rate)s
local headers = {["Content-Type"] = "application/json", ["User-Agent"] = "Alertmanager/0.27.0",
                 ["Authorization"] = "Bearer " .. token}
local made = 0
function setup(thread) thread:set("tid", made); made = made + 1 end
local counter, interval, next_at = 0, 0, 0
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } hs_timespec;
           int clock_gettime(int, hs_timespec *); ]]
local ts = ffi.new("hs_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local first = 0  -- this run's first number: every wrk run of the script sends new bodies
function init(args)
  if rate > 0 then interval = 1000 * %(threads)d / rate end
  first = tonumber(args[1] or "0") * 10000000
end
function delay()  -- paced: the next free slot of this thread's share of the rate
  if interval == 0 then return 0 end
  local now = now_ms()
  next_at = math.max(next_at + interval, now - 100)
  return math.max(0, math.floor(next_at - now))
end
function request()
  counter = counter + 1
  local n = first + counter
  local body = templates[n %% #templates + 1]
  local s = n %% %(subjects)d
  body = body:gsub("@FP(%%d)@", tag .. tid .. "x" .. s .. "x%%1")
  local ip = string.format("%%d.%%d.%%d", tid, math.floor(s / 256) %% 256, s %% 256)
  body = body:gsub("@IP%%d@", ip)
  body = body:gsub("@NS%%d@", string.format("%%09d", n %% 1000000000))
  body = body:gsub("@SV@", "bench-" .. (s %% %(services)d))
  return wrk.format("POST", "/v1/webhooks/alertmanager", headers, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %%d, "us": %%d, "status": %%d, "connect": %%d, '
    .. '"read": %%d, "write": %%d, "timeout": %%d, "p50": %%d, "p99": %%d, "max": %%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


SUBJECTS = 500  # distinct alerts per wrk thread
FIXTURE_DAY = "2025-03-14T"  # the day every bench/_common.Bodies fixture is dated


def lua_script(path: Path, token: str, rate: float, threads: int, services: int = 0) -> Path:
    """The wrk script. Its alerts are dated yesterday, as a live fleet's are (hours
    before their receipt), not on their fixtures' day: an alert received long after
    retention (30 days) found its resolved incident archived, and the engine brought it
    back and archived it again at every delivery, a cost live traffic does not have.

    ``services`` > 0 gives each alert a ``service`` label, one of that many: a fleet's
    alerts spread over its services. With 0 every alert keeps its fixture's labels, so
    a whole run's alerts pile into the few incidents of the fixtures' services (an alert
    storm: incidents of thousands of entries, each re-rendered whole per batch)."""
    bodies = c.Bodies()
    yesterday = time.strftime("%Y-%m-%dT", time.gmtime(time.time() - 86400))
    templates = [_with_service_marker(t) if services else t for t in bodies.templates]
    quoted = ", ".join(f"[==[{t.replace(FIXTURE_DAY, yesterday)}]==]" for t in templates)
    path.write_text(LUA % {"templates": quoted, "token": token, "tag": bodies.tag,
                           "rate": rate, "threads": threads, "subjects": SUBJECTS,
                           "services": max(services, 1)},
                    encoding="utf-8")
    return path


def _with_service_marker(template: str) -> str:
    body = orjson.loads(template)
    for alert in body.get("alerts", []):
        alert.setdefault("labels", {})["service"] = "@SV@"
    return orjson.dumps(body).decode()


_RUNS = itertools.count()  # each wrk run's number: its bodies' startsAt fractions


@dataclass
class Round:
    rate: float          # 2xx (durable) answers per second
    p50_ms: float
    p99_ms: float
    failed: int          # non-2xx answers and socket errors
    cpu: str


async def run_wrk(base: str, script: Path, args: argparse.Namespace, duration: float,
                  connections: int, cpu: Cpu | None) -> Round:
    threads = min(args.threads, connections)
    run = next(_RUNS)
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s",
               "--timeout", "10s", "-s", str(script), f"{base}/v1/webhooks/alertmanager",
               "--", str(run)]
    proc = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT)
    if cpu is not None:
        cpu.generator = "load generator (wrk)"
        cpu.start()
    out, _ = await proc.communicate()
    usage = cpu.stop() if cpu is not None else ""
    text = out.decode(errors="replace")
    match = re.search(r"WRKJSON (\{.*\})", text)
    if match is None:
        raise SystemExit(f"wrk printed no summary:\n{text}")
    r = orjson.loads(match.group(1))
    failed = r["status"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    seconds = r["us"] / 1e6
    return Round((r["requests"] - r["status"]) / seconds, r["p50"] / 1000, r["p99"] / 1000,
                 failed, usage)


# The row ingest writes (bench/_common.DELIVERY_DATA and DELIVERY_METADATA, a body, a
# unique stream and key). No colon in the text: pgbench reads ":name" as a variable.
PGBENCH_SCRIPT = """\
INSERT INTO plain_events (stream, stream_version, type, data, metadata, body,
                          idempotency_key, occurred_at, received_at)
VALUES ('delivery-alertmanager-' || gen_random_uuid(), 1, 'delivery.received',
        jsonb_build_object('source', 'alertmanager', 'headers', jsonb_build_object(
            'content-type', 'application/json', 'user-agent', 'Alertmanager/0.27.0')),
        jsonb_build_object('imported', false), decode('{body}', 'hex'),
        'alertmanager' || chr(58) || 'sha256' || chr(58)
            || md5(random()::text || clock_timestamp()::text),
        NULL, now());
"""


async def run_pgbench(db_url: str, tmp: Path, args: argparse.Namespace, cpu: Cpu) -> Round:
    body = c.Bodies().next()
    script = tmp / "insert.sql"
    script.write_text(PGBENCH_SCRIPT.format(body=body.hex()))
    command = ["pgbench", "-n", "-M", "prepared", "-c", str(args.connections),
               "-j", str(args.threads), "-T", str(int(args.duration)), "-f", str(script),
               "--log", "--log-prefix", str(tmp / "pgbench"), db_url]
    transaction_latencies(tmp, remove=True)
    proc = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT)
    cpu.generator = "load generator (pgbench)"
    cpu.start()
    out, _ = await proc.communicate()
    usage = cpu.stop()
    text = out.decode(errors="replace")
    tps = re.search(r"tps = ([\d.]+)", text)
    if tps is None:
        raise SystemExit(f"pgbench failed:\n{text}")
    latencies = transaction_latencies(tmp)
    failed = re.search(r"number of failed transactions: (\d+)", text)
    return Round(float(tps.group(1)), c.percentile(latencies, 0.5) / 1000,
                 c.percentile(latencies, 0.99) / 1000, int(failed.group(1)) if failed else 0,
                 usage)


def transaction_latencies(tmp: Path, *, remove: bool = False) -> list[float]:
    """pgbench's per-transaction log (--log): each line's third field, in µs; sorted."""
    found: list[float] = []
    for log in tmp.glob("pgbench.*"):
        if remove:
            log.unlink()
        else:
            found += [int(ln.split()[2]) for ln in log.read_text().splitlines() if ln.strip()]
    return sorted(found)


def probe_body(tag: str, n: int, at: float) -> tuple[bytes, str]:
    """A firing alert opening an incident of its own (its own service); the incident's
    id as the engine names it (sha256 of service, subject and occurred_at)."""
    service = f"lagprobe-{tag}-{n}"
    starts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
    alert = {"status": "firing",
             "labels": {"alertname": "LagProbe", "service": service, "severity": "critical"},
             "annotations": {"summary": "bench probe"}, "startsAt": starts,
             "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://bench.example/",
             "fingerprint": f"{tag}{n:08x}"}
    body = orjson.dumps({"version": "4", "groupKey": f"{{}}:{{service={service}}}",
                         "truncatedAlerts": 0, "status": "firing", "receiver": "bench",
                         "groupLabels": {"service": service}, "commonLabels": alert["labels"],
                         "commonAnnotations": {}, "externalURL": "http://bench.example",
                         "alerts": [alert]})
    return body, service


def incident_id(service: str, signal: dict[str, object]) -> str:
    text = "\x1f".join((service, str(signal["subject"]), str(signal["occurred_at"])))
    return "inc_" + hashlib.sha256(text.encode()).hexdigest()[:16]


async def probe_lag(base: str, token: str, until: float, gauge: list[float],
                    horizon: list[float] | None = None) -> list[float]:
    """Every 0.2 s a probe delivery; each one's lag from its 202 to the first 200 of
    GET /v1/incidents/{id} (polled every 10 ms, or a tenth of the wait so far when that
    is longer: within 10%). ``gauge`` gets the server's own view
    meanwhile: hindsight_projector_lag_seconds (the oldest unprojected event's age);
    ``horizon`` hindsight_read_horizon_age_seconds: how long a transaction anywhere in
    the cluster (another bench's, on a shared one) has kept readers from new events."""
    lags: list[float] = []
    tag = secrets.token_hex(3)
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=auth) as session:

        async def one(n: int) -> None:
            body, service = probe_body(tag, n, time.time() - 5)
            async with session.post(f"{base}/v1/webhooks/alertmanager", data=body,
                                    headers={"Content-Type": "application/json"}) as resp:
                answer = await resp.json()
                if resp.status != 202:
                    return
            committed = time.monotonic()
            url = f"{base}/v1/incidents/{incident_id(service, answer['signals'][0])}"
            while (waited := time.monotonic() - committed) < 60:
                async with session.get(url) as resp:
                    await resp.read()
                    if resp.status == 200:
                        lags.append(time.monotonic() - committed)
                        return
                # Every 10 ms, or a tenth of the wait so far when longer: each lag is
                # read within 10% (or 10 ms), and a lagging projector does not draw a
                # flood of polls: at 10 ms each, 5 probes/s lagging 20 s kept ~100
                # probes polling, up to thousands of GETs/s from this Python process
                # to the workers, CPU taken from the projector it measures.
                await asyncio.sleep(max(0.01, waited / 10))
            lags.append(float("inf"))

        tasks = []
        n = 0
        while time.monotonic() < until:
            tasks.append(asyncio.create_task(one(n)))
            n += 1
            await asyncio.sleep(0.2)
            with contextlib.suppress(aiohttp.ClientError, ValueError):
                async with session.get(f"{base}/metrics") as resp:
                    text = await resp.text()
                    found = re.search(r"^hindsight_projector_lag_seconds (\S+)$", text, re.M)
                    if found:
                        gauge.append(float(found.group(1)))
                    held = re.search(r"^hindsight_read_horizon_age_seconds (\S+)$", text,
                                     re.M)
                    if held and horizon is not None:
                        horizon.append(float(held.group(1)))
        await asyncio.gather(*tasks)
    return lags


async def postmaster_pid(db_url: str) -> int:
    conn = await asyncpg.connect(db_url)
    try:
        f = stat_fields(await conn.fetchval("SELECT pg_backend_pid()"))  # while it lives
    finally:
        await conn.close()
    if f is None:
        raise SystemExit("PostgreSQL is not on this machine: its CPU cannot be counted")
    return int(f[1])


def line(name: str, r: Round) -> str:
    return (f"{name} {r.rate:,.0f}/s  p50 {r.p50_ms:.1f} ms  p99 {r.p99_ms:.1f} ms"
            f"  failed {r.failed}")


async def main(args: argparse.Namespace) -> None:
    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed (apt-get install -y wrk postgresql-client)")
    token = secrets.token_urlsafe(24)
    async with c.databases() as dbs:
        db_url = await dbs.fresh("bench_ingest")
        print(f"# bench/ingest.py: {c.machine()}, aiohttp {aiohttp.__version__}")
        print(f"# {await dbs.describe()}")
        print(f"# {args.rounds} rounds, interleaved: HTTP (wrk, {args.connections} connections) "
              f"/ bare INSERT (pgbench, {args.connections} connections) / live lag (wrk "
              f"paced at {args.lag_rate:g}/s + probes), {args.duration:g} s each; medians.")
        with tempfile.TemporaryDirectory(prefix="hindsight-bench-") as name:
            tmp = Path(name)
            extra = ["--workers", str(args.workers)] if args.workers else []
            proc, base, log = c.launch_server(tmp, db_url, token, args.log_level, extra=extra)
            http: list[Round] = []
            bare: list[Round] = []
            lag: list[tuple[Round, list[float]]] = []
            try:
                await c.wait_ready(base, proc, log)
                pg = await postmaster_pid(db_url)
                workers = len(children_of(proc.pid))
                print(f"# server: default `hindsight serve`, supervisor pid {proc.pid} with "
                      f"{workers} children (1 projector + HTTP workers), {base}; "
                      f"PostgreSQL postmaster pid {pg} (its CPU alone is counted)")
                breakdown = (Breakdown(proc.pid, pg, log, db_url) if args.breakdown
                             else None)
                full = lua_script(tmp / "full.lua", token, 0, args.threads, args.services)
                paced = lua_script(tmp / "paced.lua", token, args.lag_rate, args.threads,
                                   args.services)
                await run_wrk(base, full, args, args.warmup, args.connections, None)
                for r in range(1, args.rounds + 1):
                    families = {"server": proc.pid, "postgres": pg}
                    if breakdown is not None:
                        await breakdown.start()
                    h = await run_wrk(base, full, args, args.duration, args.connections,
                                      Cpu(dict(families)))
                    http.append(h)
                    print(f"round {r}: {line('HTTP deliveries (2xx)', h)}\n         {h.cpu}",
                          flush=True)
                    if breakdown is not None:
                        print(f"         {await breakdown.stop()}", flush=True)
                    b = await run_pgbench(db_url, tmp, args, Cpu({"postgres": pg}))
                    bare.append(b)
                    print(f"round {r}: {line('bare INSERT txns', b)}\n         {b.cpu}",
                          flush=True)
                    # Let the projector catch up with the full-speed round first.
                    await wait_caught_up(db_url, 120)
                    until = time.monotonic() + args.duration
                    gauge: list[float] = []
                    held: list[float] = []
                    probes = asyncio.create_task(probe_lag(base, token, until, gauge, held))
                    p = await run_wrk(base, paced, args, args.duration, args.lag_connections,
                                      Cpu(dict(families)))
                    lags = sorted(await probes)
                    lag.append((p, lags))
                    print(f"round {r}: {line('paced deliveries', p)}; live lag of "
                          f"{len(lags)} probes: median {c.percentile(lags, 0.5):.3f} s, "
                          f"p99 {c.percentile(lags, 0.99):.3f} s, max {lags[-1]:.3f} s; "
                          f"server's lag gauge max {max(gauge, default=float('nan')):.3f} s; "
                          f"read horizon held up to {max(held, default=float('nan')):.1f} s "
                          f"(by a transaction anywhere in the cluster)\n         {p.cpu}",
                          flush=True)
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.to_thread(proc.wait, 30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        await asyncio.to_thread(proc.wait)

    rate, p99 = c.median([h.rate for h in http]), c.median([h.p99_ms for h in http])
    bare_rate = c.median([b.rate for b in bare])
    ratio = rate / bare_rate
    paced_rate = c.median([p.rate for p, _ in lag])
    lag_p99 = c.median([c.percentile(ls, 0.99) for _, ls in lag])
    lag_median = c.median([c.percentile(ls, 0.5) for _, ls in lag])
    print()
    print(f"HTTP deliveries (2xx, durable): {rate:,.0f}/s  p50 "
          f"{c.median([h.p50_ms for h in http]):.1f} ms  p99 {p99:.1f} ms "
          f"(goal < 100 ms: {c.goal(p99 < 100)})")
    print(f"bare single-row INSERT txns (pgbench): {bare_rate:,.0f}/s  p50 "
          f"{c.median([b.p50_ms for b in bare]):.1f} ms  p99 "
          f"{c.median([b.p99_ms for b in bare]):.1f} ms")
    print(f"ratio HTTP / bare INSERT: {ratio:.2f} (goal >= 0.35: {c.goal(ratio >= 0.35)})")
    print(f"live lag at {paced_rate:,.0f} deliveries/s (paced at {args.lag_rate:g}/s): "
          f"median {lag_median:.3f} s, p99 {lag_p99:.3f} s (goal < 1 s: "
          f"{c.goal(lag_p99 < 1)})")


async def wait_caught_up(db_url: str, within: float) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            behind = await conn.fetchval(
                """SELECT (SELECT count(*) FROM events)
                          - (SELECT coalesce(max(events), 0) FROM projector_checkpoint)""")
            if not behind:
                return
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per phase")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--connections", type=int, default=64,
                   help="wrk's and pgbench's connections at full speed")
    p.add_argument("--threads", type=int, default=2, help="wrk's and pgbench's threads")
    p.add_argument("--lag-rate", type=float, default=1000.0,
                   help="deliveries per second during the live-lag phase")
    p.add_argument("--lag-connections", type=int, default=16)
    p.add_argument("--services", type=int, default=0,
                   help="spread alerts over this many services (0: the fixtures' own "
                        "labels, an alert storm in a few services)")
    p.add_argument("--workers", type=int, default=0,
                   help="serve --workers (default: serve's own, the number of cores)")
    p.add_argument("--breakdown", action="store_true",
                   help="print CPU µs per delivery by component for each HTTP phase")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="the server's log level (default: serve's default, info)")
    return p.parse_args()


if __name__ == "__main__":
    started = time.perf_counter()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parse()))
    print(f"# done in {time.perf_counter() - started:.0f} s")
