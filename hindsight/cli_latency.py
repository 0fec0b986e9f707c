"""``hindsight latency`` (the detection-latency table in a terminal) and ``hindsight demo``
(a realistic week of recorded deliveries, imported into the running server).

The demo goes through the running server's own front door: ``POST
/v1/deliveries/import`` with the API token, each delivery carrying the credential its
source is configured with (a token, or a signature computed with the configured secret,
as the tool itself would), then ``POST /v1/incidents`` for the outage a user reported.
Nothing is written around the server, so the demo shows what real traffic does: the
deliveries are authenticated, stored verbatim, projected, and the timelines, drafts and
dashboard fill in.

The bundled week (``hindsight/demo_data/week.jsonl``) was recorded in the week of
2025-03-10. It is replayed as the seven days before today: every date in the deliveries
(bodies and ``received_at``) moves by the same whole number of days, so times of day,
offsets and detection latencies stay exactly as recorded, and running the demo again the
same day imports nothing new (the same bodies are duplicates).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import re
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from hindsight.cli_output import Column, add_format_option, emit, render_table
from hindsight.settings import Settings
from projections.drafts.formats import duration

DEMO_FILE = Path(__file__).resolve().parent / "demo_data" / "week.jsonl"
RECORDED_LAST_DAY = date(2025, 3, 16)  # the Sunday that ends the recorded week
GROUP_BYS = ("week", "month", "service", "source", "kind", "severity")

# A calendar date followed by a time of day, as in RFC 3339 ("2025-03-14T10:02:40Z") or
# Uptime Kuma's "2025-03-14 10:02:31.512": the date part moves, the rest stays.
_DATE_BEFORE_TIME = re.compile(rb"\b(\d{4})-(\d{2})-(\d{2})(?=[T ]\d{2}:\d{2})")
# Headers that carry the tool's own delivery id (ingest.webhooks.delivery_id).
_DELIVERY_ID_HEADERS = ("x-github-delivery", "x-gitlab-event-uuid", "webhook-id")


# --- hindsight latency -----------------------------------------------------------------

def parse_when(text: str) -> datetime:
    """``YYYY-MM-DD`` (midnight UTC) or an RFC 3339 time; a time without zone is UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected YYYY-MM-DD or an RFC 3339 time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


LATENCY_COLUMNS = ("incidents", "p50", "p90", "max", "P1>5m", ">30m/human")


def _latency_cells(row: Any, name: str | None = None) -> list[str]:
    return [row.group if name is None else name, str(row.incidents),
            duration(row.p50_seconds), duration(row.p90_seconds), duration(row.max_seconds),
            str(row.p1_over_5m), str(row.over_30m)]


def format_table(group_by: str, rows: list[Any], total: Any | None) -> str:
    """The figures as a table, durations as everywhere (``projections.drafts.formats``)."""
    columns = (Column(group_by, keep=True), *(Column(n, keep=True, right=True)
                                               for n in LATENCY_COLUMNS))
    cells = [_latency_cells(r) for r in rows]
    if total is not None:
        cells.append(_latency_cells(total, "all"))
    text = render_table("", columns, cells, None).split("\n", 1)[1]
    return text.rstrip("\n")


def cmd_latency(args: argparse.Namespace, settings: Settings) -> int:
    import asyncpg

    from hindsight.cli import _with_admin_connection
    from projections.web.latency import latency_rows

    async def work(conn: Any) -> int:
        try:
            rows = await latency_rows(conn, args.group_by, args.since, args.until)
            total = await latency_rows(conn, "all", args.since, args.until)
        except asyncpg.UndefinedTableError:
            print("hindsight: the database is not migrated: run `hindsight migrate` "
                  "(or `hindsight serve`) first", file=sys.stderr)
            return 1
        if args.format == "table":
            if not rows:
                print("No detected incidents in this period.")
                return 0
            print(format_table(args.group_by, rows, total[0] if total else None))
            return 0
        columns = (Column(args.group_by), *(Column(n) for n in LATENCY_COLUMNS))
        everything = [*rows, *total] if rows else []
        cells = [_latency_cells(r) for r in everything]
        emit(args.format, title="", columns=columns, cells=cells,
             records=[r.to_json() for r in everything])
        return 0

    result: int = asyncio.run(_with_admin_connection(settings, work))
    return result


# --- hindsight demo --------------------------------------------------------------------

def day_shift(now: datetime) -> int:
    """Days to move the recorded week so that it ends yesterday (UTC)."""
    return (now.astimezone(UTC).date() - timedelta(days=1) - RECORDED_LAST_DAY).days


def shift_dates(raw: bytes, days: int) -> bytes:
    def moved(match: re.Match[bytes]) -> bytes:
        y, m, d = (int(g) for g in match.groups())
        return (date(y, m, d) + timedelta(days=days)).isoformat().encode()

    return _DATE_BEFORE_TIME.sub(moved, raw) if days else raw


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def credential_headers(settings: Settings, source: str, body: bytes,
                       received_at: datetime, headers: dict[str, str]) -> dict[str, str]:
    """What the tool would add for ``body``, from the credential configured for it."""
    from ingest.auth import standard_webhooks_signature

    conf = settings.sources.get(source)
    if conf is None:
        return {}
    token = conf.token.get_secret_value() if conf.token else None
    secret = conf.secret.get_secret_value() if conf.secret else None
    if source == "github" and secret:
        return {"X-Hub-Signature-256": "sha256=" + _hmac_hex(secret, body)}
    if source == "gitlab" and secret:
        return {"X-Gitlab-Token": secret}
    if source == "pagerduty" and secret:
        return {"X-PagerDuty-Signature": "v1=" + _hmac_hex(secret, body)}
    if source == "vercel" and secret:
        return {"x-vercel-signature": hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()}
    if source == "checkly" and secret:  # its send time, measured like native's
        return {"x-checkly-signature": _hmac_hex(secret, body),
                "x-checkly-timestamp": str(int(received_at.timestamp() * 1000))}
    if source == "sentry" and secret:  # its send time, in Unix seconds
        return {"Sentry-Hook-Signature": _hmac_hex(secret, body),
                "Sentry-Hook-Timestamp": str(int(received_at.timestamp()))}
    if source == "native" and secret:
        # Standard Webhooks: the timestamp is the recorded send time, so the signature
        # window is measured from the recorded received_at, as for a live delivery.
        msg_id = headers.get("webhook-id") or "msg_" + hashlib.sha256(body).hexdigest()[:24]
        stamp = str(int(received_at.timestamp()))
        return {"webhook-id": msg_id, "webhook-timestamp": stamp,
                "webhook-signature": standard_webhooks_signature(secret, msg_id, stamp, body)}
    if token:
        return {"Authorization": f"Bearer {token}"}
    if source == "grafana" and secret:
        return {"X-Grafana-Alerting-Signature": _hmac_hex(secret, body)}
    return {}


def demo_lines(settings: Settings, now: datetime, path: Path = DEMO_FILE) -> list[bytes]:
    """The bundled week as import lines: dates moved to the seven days before ``now``,
    each delivery id made unique to that week, and each source's credential added."""
    days = day_shift(now)
    out: list[bytes] = []
    for raw in path.read_bytes().splitlines():
        if not raw.strip():
            continue
        record = orjson.loads(shift_dates(raw, days))
        source = record["source"]
        received_at = datetime.fromisoformat(record["received_at"].replace("Z", "+00:00"))
        headers: dict[str, str] = dict(record.get("headers") or {})
        for name in list(headers):
            if name.lower() in _DELIVERY_ID_HEADERS and days:
                # Another week is another delivery: the tool's id must differ too.
                original = headers[name]
                fresh = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{original}/{days}"))
                headers[name] = ("msg_" + fresh.replace("-", "")[:24]
                                 if original.startswith("msg_") else fresh)
        lower = {k.lower(): v for k, v in headers.items()}
        body = record["body"].encode("utf-8")
        headers.update(credential_headers(settings, source, body, received_at, lower))
        out.append(orjson.dumps({**record, "headers": headers}))
    return out


@dataclass(frozen=True)
class Declaration:
    body: dict[str, Any]
    headers: dict[str, str]


def user_report(now: datetime) -> Declaration:
    """The outage no monitor saw: customers could not sign in, support declared it."""
    day = now.astimezone(UTC).date().isoformat()
    started = (now - timedelta(minutes=52)).astimezone(UTC).replace(microsecond=0)
    return Declaration(
        body={"incident_id": f"demo-login-{day}", "service": "accounts",
              "title": "Customers cannot sign in with a saved password",
              "severity": "P2",
              "started_at": started.isoformat().replace("+00:00", "Z"),
              "summary": "Reported by customers through support: sign-in answers "
                         "'invalid password' for valid credentials since the session "
                         "store failover. No monitor alerted."},
        headers={"Idempotency-Key": f"demo-{day}"})


def _base_url(args: argparse.Namespace, settings: Settings) -> str:
    if args.url:
        return str(args.url).rstrip("/")
    from hindsight.cli import server_url

    return server_url(settings)


async def _demo(args: argparse.Namespace, settings: Settings) -> int:
    import aiohttp

    base = _base_url(args, settings)
    if not settings.api_tokens:
        print("hindsight demo: no API token configured ([api] tokens); start "
              "`hindsight serve` once to generate credentials", file=sys.stderr)
        return 2
    auth = {"Authorization": f"Bearer {settings.api_tokens[0]}"}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        deadline = time.monotonic() + args.wait
        while True:
            try:
                async with http.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                print(f"hindsight demo: no Hindsight answered at {base}/readyz: start it "
                      "with `hindsight serve`, or give the port it serves on (--port or "
                      "HINDSIGHT_PORT, as for serve) or --url", file=sys.stderr)
                return 1
            await asyncio.sleep(0.5)

        now = datetime.now(UTC)
        lines = demo_lines(settings, now)
        async with http.post(f"{base}/v1/deliveries/import", data=b"\n".join(lines),
                             headers={**auth, "Content-Type": "application/x-ndjson"}) as resp:
            if resp.status != 200:
                print(_refusal(f"{base}/v1/deliveries/import", resp.status,
                               await resp.text(), settings), file=sys.stderr)
                return 1
            results = (await resp.json())["results"]
        stored = sum(1 for r in results if r["status"] in {200, 202} and not r["duplicate"])
        duplicates = sum(1 for r in results if r["duplicate"])
        refused = [r for r in results if r["status"] not in {200, 202}]
        print(f"Imported {len(results)} recorded deliveries of the last 7 days: {stored} new, "
              f"{duplicates} already there, {len(refused)} refused.")
        for r in refused[:5]:
            print(f"  line {r['line']}: {r['status']} {r['error'] or ''}".rstrip())
        if refused:
            print("  (a refused source is disabled or has no credential in the settings)")

        report = user_report(now)
        async with http.post(f"{base}/v1/incidents", json=report.body,
                             headers={**auth, **report.headers}) as resp:
            if resp.status != 201:
                print(_refusal(f"{base}/v1/incidents", resp.status, await resp.text(),
                               settings), file=sys.stderr)
                return 1
        print("Declared the outage a user reported (no monitor saw it).")

        # The projector folds the log in the background: wait until the figures settle.
        figures: list[dict[str, Any]] = []
        settle = time.monotonic() + 30
        previous = None
        while time.monotonic() < settle:
            async with http.get(f"{base}/v1/detection-latency",
                                params={"group_by": "source"}, headers=auth) as resp:
                figures = (await resp.json())["rows"]
            count = sum(r["incidents"] for r in figures)
            if count and count == previous:
                break
            previous = count
            await asyncio.sleep(1.0)
    print()
    print("Detection latency by source (the monitor that told us first):")
    from projections.web.latency import LatencyRow

    rows = [LatencyRow(**r) for r in figures]
    print(format_table("source", rows, None) if rows else "  (nothing projected yet)")
    print()
    print(f"Open {base}/dashboard and enter the API token "
          f"(in {settings.config_path or 'hindsight.toml'}, [api] tokens).")
    print("`hindsight incidents` lists the incidents with their ids, `hindsight draft ID` "
          "prints one's postmortem draft, `hindsight latency --group-by service` these "
          "figures by service.")
    return 0


def _refusal(url: str, status: int, text: str, settings: Settings) -> str:
    """One line naming the URL tried; for 401, where the token came from."""
    if status == 401:
        where = settings.config_path or "HINDSIGHT_API__TOKENS"
        return (f"hindsight demo: {url} answered 401: the server does not accept the API "
                f"token from {where}; is it the server these settings belong to?")
    return f"hindsight demo: {url} answered {status}: {' '.join(text.split())[:300]}"


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    result: int = asyncio.run(_demo(args, settings))
    return result


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from hindsight.cli import add_server_options

    latency = sub.add_parser("latency", help="detection latency: p50, p90, max per group")
    latency.add_argument("--group-by", choices=GROUP_BYS, default="week",
                         help="one row per week (default), month, service, source, kind or "
                              "severity")
    latency.add_argument("--since", type=parse_when, help="YYYY-MM-DD or RFC 3339 (inclusive)")
    latency.add_argument("--until", type=parse_when, help="YYYY-MM-DD or RFC 3339 (exclusive)")
    add_format_option(latency)
    latency.set_defaults(func=cmd_latency)

    demo = sub.add_parser("demo", help="import a realistic week of deliveries into the "
                                       "running server")
    add_server_options(demo)
    demo.add_argument("--url", help="the running Hindsight's base URL (default: "
                                    "http://HOST:PORT from --host/--port, HINDSIGHT_HOST/"
                                    "HINDSIGHT_PORT or the settings file, as for serve)")
    demo.add_argument("--wait", type=float, default=60.0,
                      help="seconds to wait for the server to be ready (default 60)")
    demo.set_defaults(func=cmd_demo)
