"""GET /v1/detection-latency, the views behind it, `hindsight latency`, the Grafana
dashboard's queries, and the demo week.

The seeded set (``SEEDED``) is small enough to compute every figure by hand; the
expected values below are those hand computations (percentile_cont interpolates: the
p-th percentile of n sorted values sits at position p·(n−1), between its neighbours).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from tests.helpers import api_headers

ROOT = Path(__file__).resolve().parents[2]

# id, service, severity, started_at, latency (s), detected_by, first detector source,
# kinds, merged_into
SEEDED: list[tuple[str, str, str, str, float | None, str, str | None, list[str], str | None]] = [
    ("J", "checkout", "P4", "2025-02-25T08:00:00Z", 10, "monitor", "alertmanager", ["alert"], None),
    ("A", "checkout", "P1", "2025-03-03T10:00:00Z", 60, "monitor", "alertmanager", ["alert"], None),
    ("B", "checkout", "P2", "2025-03-04T10:00:00Z", 120, "monitor", "uptime-kuma", ["uptime"],
     None),
    ("C", "search", "P1", "2025-03-05T10:00:00Z", 600, "monitor", "alertmanager",
     ["alert", "uptime"], None),
    ("D", "search", "P3", "2025-03-06T10:00:00Z", 2400, "monitor", "healthchecks", ["cron"], None),
    # Sunday 23:30 UTC: Monday already in Berlin, still the week of 2025-03-03 in UTC.
    ("K", "search", "P2", "2025-03-09T23:30:00Z", 200, "monitor", "grafana", ["alert"], None),
    ("E", "checkout", "P1", "2025-03-10T09:00:00Z", 30, "monitor", "grafana", ["alert"], None),
    ("F", "billing", "P2", "2025-03-12T10:00:00Z", 900, "human", None, [], None),
    ("G", "billing", "P3", "2025-03-14T10:00:00Z", 4000, "monitor", "uptimerobot",
     ["deploy", "uptime"], None),
    # Left out: merged into A, and never detected.
    ("H", "checkout", "P1", "2025-03-03T10:01:00Z", 5, "monitor", "alertmanager", ["alert"], "A"),
    ("I", "search", "P1", "2025-03-11T10:00:00Z", None, "monitor", None, ["alert"], None),
]


def row(group: str, n: int, p50: float, p90: float, mx: float, p1: int, over: int
        ) -> dict[str, Any]:
    return {"group": group, "incidents": n, "p50_seconds": p50, "p90_seconds": p90,
            "max_seconds": mx, "p1_over_5m": p1, "over_30m": over}


EXPECTED: dict[str, list[dict[str, Any]]] = {
    "week": [
        row("2025-02-24", 1, 10, 10, 10, 0, 0),
        # [60, 120, 200, 600, 2400]: p50 = 200; p90 at 3.6 = 600 + 0.6 × 1800
        row("2025-03-03", 5, 200, 1680, 2400, 1, 1),
        # [30, 900, 4000]: p50 = 900; p90 at 1.8 = 900 + 0.8 × 3100; F by a human, G > 30 min
        row("2025-03-10", 3, 900, 3380, 4000, 0, 2),
    ],
    "month": [
        row("2025-02", 1, 10, 10, 10, 0, 0),
        # [30, 60, 120, 200, 600, 900, 2400, 4000]: p50 at 3.5 = 200 + 0.5 × 400;
        # p90 at 6.3 = 2400 + 0.3 × 1600
        row("2025-03", 8, 400, 2880, 4000, 1, 3),
    ],
    "service": [
        row("billing", 2, 2450, 3690, 4000, 0, 2),
        # [10, 30, 60, 120]: p50 at 1.5 = 45; p90 at 2.7 = 60 + 0.7 × 60
        row("checkout", 4, 45, 102, 120, 0, 0),
        row("search", 3, 600, 2040, 2400, 1, 1),
    ],
    "source": [
        # [10, 60, 600]: p90 at 1.8 = 60 + 0.8 × 540
        row("alertmanager", 3, 60, 492, 600, 1, 0),
        row("grafana", 2, 115, 183, 200, 0, 0),
        row("healthchecks", 1, 2400, 2400, 2400, 0, 1),
        row("human", 1, 900, 900, 900, 0, 1),
        row("uptime-kuma", 1, 120, 120, 120, 0, 0),
        row("uptimerobot", 1, 4000, 4000, 4000, 0, 1),
    ],
    "severity": [
        row("P1", 3, 60, 492, 600, 1, 0),
        row("P2", 3, 200, 760, 900, 0, 1),
        row("P3", 2, 3200, 3840, 4000, 0, 2),
        row("P4", 1, 10, 10, 10, 0, 0),
    ],
    "kind": [
        # [10, 30, 60, 200, 600]: p90 at 3.6 = 200 + 0.6 × 400; a deploy is no kind
        row("alert", 5, 60, 440, 600, 1, 0),
        row("cron", 1, 2400, 2400, 2400, 0, 1),
        row("manual", 1, 900, 900, 900, 0, 1),
        # [120, 600, 4000]: p90 at 1.8 = 600 + 0.8 × 3400
        row("uptime", 3, 600, 3320, 4000, 1, 1),
    ],
    # [10, 30, 60, 120, 200, 600, 900, 2400, 4000]: p90 at 7.2 = 2400 + 0.2 × 1600
    "all": [row("all", 9, 200, 2720, 4000, 1, 3)],
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def seed(database_url: str) -> None:
    """The seeded incidents as the projector would write them (the views read only the
    incidents table)."""
    conn = await asyncpg.connect(database_url)
    try:
        for (inc_id, service, severity, started, latency, by, source, kinds,
             merged) in SEEDED:
            started_at = at(started)
            detected_at = None if latency is None else started_at + timedelta(seconds=latency)
            verdict = ("critical" if by == "human" or (latency or 0) > 1800 else
                       "gap" if severity == "P1" and (latency or 0) > 300 else "ok")
            doc = {"id": inc_id, "title": f"Incident {inc_id}", "service": service,
                   "kinds": kinds, "sources": [source] if source else []}
            await conn.execute(
                """INSERT INTO incidents (id, service, title, severity, status, started_at,
                       detected_at, detection_latency_seconds, detected_by, detection_verdict,
                       first_detector_source, merged_into, summary, doc)
                   VALUES ($1, $2, $3, $4, 'resolved', $5, $6, $7, $8, $9, $10, $11, $12::json,
                           $12::jsonb)""",
                inc_id, service, f"Incident {inc_id}", severity, started_at, detected_at,
                latency, by, verdict, source, merged, orjson.dumps(doc).decode())
    finally:
        await conn.close()


def approx_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: pytest.approx(v) if isinstance(v, float | int) and not isinstance(v, bool)
             else v for k, v in r.items()} for r in rows]


@pytest.mark.parametrize("group_by", list(EXPECTED))
async def test_the_figures_match_the_hand_computed_ones(make_client: Any, database_url: str,
                                                       group_by: str) -> None:
    await seed(database_url)
    client = await make_client()
    response = await client.get("/v1/detection-latency", params={"group_by": group_by},
                                headers=api_headers())
    assert response.status == 200
    assert (await response.json())["rows"] == approx_rows(EXPECTED[group_by])


@pytest.mark.parametrize("group_by", ["week", "month", "service", "source", "severity", "kind"])
async def test_the_views_hold_the_same_figures_as_the_api(database_url: str,
                                                         group_by: str) -> None:
    await seed(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            f'SELECT * FROM detection_latency_by_{group_by} ORDER BY "group"')
    finally:
        await conn.close()
    assert [dict(r) for r in rows] == approx_rows(EXPECTED[group_by])


async def test_weeks_and_months_are_utc_whatever_the_session_time_zone(
        database_url: str) -> None:
    await seed(database_url)
    conn = await asyncpg.connect(database_url, server_settings={"TimeZone": "Europe/Berlin"})
    try:
        week = await conn.fetchval("SELECT week FROM detection_latency WHERE id = 'K'")
        weeks = await conn.fetch('SELECT "group", incidents FROM detection_latency_by_week')
    finally:
        await conn.close()
    assert str(week) == "2025-03-03"
    assert {r["group"]: r["incidents"] for r in weeks}["2025-03-03"] == 5


async def test_since_and_until_bound_the_impact_start(make_client: Any,
                                                      database_url: str) -> None:
    await seed(database_url)
    client = await make_client()
    response = await client.get(
        "/v1/detection-latency",
        params={"group_by": "week", "since": "2025-03-03T00:00:00Z",
                "until": "2025-03-10T00:00:00Z"},
        headers=api_headers())
    assert (await response.json())["rows"] == approx_rows([EXPECTED["week"][1]])


async def test_the_default_grouping_is_by_week(make_client: Any, database_url: str) -> None:
    await seed(database_url)
    client = await make_client()
    response = await client.get("/v1/detection-latency", headers=api_headers())
    assert (await response.json())["rows"] == approx_rows(EXPECTED["week"])


async def test_merged_away_and_undetected_incidents_are_left_out(database_url: str) -> None:
    await seed(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        ids = {r["id"] for r in await conn.fetch("SELECT id FROM detection_latency")}
    finally:
        await conn.close()
    assert "H" not in ids
    assert "I" not in ids
    assert len(ids) == 9


async def test_an_empty_history_answers_no_rows(make_client: Any) -> None:
    client = await make_client()
    response = await client.get("/v1/detection-latency", params={"group_by": "all"},
                                headers=api_headers())
    assert await response.json() == {"rows": []}


async def test_an_unknown_grouping_is_refused_with_the_choices(make_client: Any) -> None:
    client = await make_client()
    response = await client.get("/v1/detection-latency", params={"group_by": "team"},
                                headers=api_headers())
    assert response.status == 400
    assert "week" in (await response.json())["error"]


async def test_a_bad_time_is_refused(make_client: Any) -> None:
    client = await make_client()
    response = await client.get("/v1/detection-latency", params={"since": "last tuesday"},
                                headers=api_headers())
    assert response.status == 400


async def test_the_figures_need_the_api_token(make_client: Any) -> None:
    client = await make_client()
    assert (await client.get("/v1/detection-latency")).status == 401
    assert (await client.get("/v1/detection-latency/worst")).status == 401


async def test_the_worst_detections_come_slowest_first(make_client: Any,
                                                       database_url: str) -> None:
    await seed(database_url)
    client = await make_client()
    response = await client.get("/v1/detection-latency/worst",
                                params={"limit": "3", "since": "2025-03-01T00:00:00Z"},
                                headers=api_headers())
    found = (await response.json())["incidents"]
    assert [(i["id"], i["detection_latency_seconds"]) for i in found] == [
        ("G", 4000), ("D", 2400), ("F", 900)]
    assert found[2]["detected_by"] == "human"
    assert found[2]["source"] == "human"
    assert found[0]["started_at"] == "2025-03-14T10:00:00Z"
    assert found[0]["detection_verdict"] == "critical"


async def test_the_worst_list_refuses_a_limit_out_of_range(make_client: Any) -> None:
    client = await make_client()
    response = await client.get("/v1/detection-latency/worst", params={"limit": "0"},
                                headers=api_headers())
    assert response.status == 400


# --- hindsight latency -----------------------------------------------------------------

async def run_cli(database_url: str, *args: str, cwd: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HINDSIGHT_")}
    env["HINDSIGHT_DATABASE_URL"] = database_url
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hindsight.cli", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_latency_command_prints_the_same_figures(database_url: str,
                                                           tmp_path: Path) -> None:
    await seed(database_url)
    code, out, err = await run_cli(database_url, "latency", "--group-by", "service",
                                   cwd=tmp_path)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["service", "incidents", "p50"]
    checkout = next(line for line in lines if line.startswith("checkout"))
    # 45 s and 1 min 42 s, as the dashboard shows them
    assert checkout.split()[:2] == ["checkout", "4"]
    assert "45 s" in checkout
    assert "1 min 42 s" in checkout
    assert lines[-1].startswith("all")
    assert lines[-1].split()[1] == "9"


async def test_the_latency_command_takes_a_period(database_url: str, tmp_path: Path) -> None:
    await seed(database_url)
    code, out, err = await run_cli(database_url, "latency", "--since", "2025-03-10",
                                   "--until", "2025-03-17T00:00:00Z", cwd=tmp_path)
    assert code == 0, err
    body = [line for line in out.splitlines()[1:] if line.strip() and line[0] != "-"]
    assert body[0].split()[:2] == ["2025-03-10", "3"]
    assert body[-1].split()[:2] == ["all", "3"]


async def test_the_latency_command_refuses_a_bad_date(database_url: str,
                                                      tmp_path: Path) -> None:
    code, _, err = await run_cli(database_url, "latency", "--since", "yesterday",
                                 cwd=tmp_path)
    assert code == 2
    assert "--since" in err


# --- the Grafana dashboard -------------------------------------------------------------

GRAFANA = ROOT / "deploy" / "grafana" / "detection-latency.json"


def grafana_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(GRAFANA.read_text(encoding="utf-8"))
    found: list[tuple[str, str]] = []
    for panel in dashboard["panels"]:
        found.extend((panel["title"], t["rawSql"]) for t in panel.get("targets", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            found.append((variable["name"], query if isinstance(query, str) else query["rawSql"]))
    return found


def substitute_macros(sql: str) -> str:
    """Grafana's PostgreSQL macros and variables, as Grafana expands them for a range."""
    since, until = "'2025-02-01T00:00:00Z'::timestamptz", "'2025-04-01T00:00:00Z'::timestamptz"
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", rf"\1 BETWEEN {since} AND {until}", sql)
    sql = re.sub(r"\$__timeGroupAlias\(([^,]+),\s*'?(\w+)'?\)", r"\1 AS time", sql)
    sql = re.sub(r"\$__timeGroup\(([^,]+),\s*'?(\w+)'?\)", r"\1", sql)
    sql = sql.replace("$__timeFrom()", since).replace("$__timeTo()", until)
    sql = re.sub(r"\$\{?service(:\w+)?\}?", "'checkout','search','billing'", sql)
    sql = re.sub(r"\$\{?severity(:\w+)?\}?", "'P1','P2','P3','P4'", sql)
    assert "$" not in sql, f"an unexpanded Grafana macro is left: {sql}"
    return sql


def test_the_grafana_dashboard_is_importable_json() -> None:
    dashboard = json.loads(GRAFANA.read_text(encoding="utf-8"))
    assert dashboard["title"]
    assert dashboard["uid"]
    assert "id" not in dashboard or dashboard["id"] is None
    inputs = dashboard["__inputs"]
    assert [i["pluginId"] for i in inputs] == ["grafana-postgresql-datasource"]
    assert len(grafana_queries()) >= 6


@pytest.mark.parametrize(("title", "sql"), grafana_queries())
async def test_every_grafana_query_runs_against_a_migrated_database(
        database_url: str, title: str, sql: str) -> None:
    await seed(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        # As the read-only service role, which a Grafana data source user resembles.
        await conn.execute("SET ROLE hindsight_service")
        rows = await conn.fetch(substitute_macros(sql))
    finally:
        await conn.close()
    assert rows, f"{title}: no rows for the seeded incidents"


# --- the demo week ---------------------------------------------------------------------

async def test_the_demo_week_imports_into_a_dozen_incidents_of_every_speed(
        make_client: Any) -> None:
    from hindsight.app import PROJECTOR
    from hindsight.cli_latency import demo_lines, user_report
    from tests.helpers import settings_for_tests

    client = await make_client(projector=True)
    now = datetime(2025, 6, 18, 15, 20, tzinfo=UTC)
    lines = demo_lines(settings_for_tests(), now)
    response = await client.post("/v1/deliveries/import", data=b"\n".join(lines),
                                 headers=api_headers())
    results = (await response.json())["results"]
    assert {r["status"] for r in results} == {202}, [r for r in results if r["status"] != 202]
    report = user_report(now)
    declared = await client.post("/v1/incidents", json=report.body,
                                 headers={**api_headers(), **report.headers})
    assert declared.status == 201
    last = max(r["delivery"] for r in results)
    assert await client.app[PROJECTOR].wait_for(max(last, (await declared.json())["event"]))

    listing = await (await client.get("/v1/detection-latency/worst", params={"limit": "100"},
                                      headers=api_headers())).json()
    incidents = listing["incidents"]
    latencies = sorted(i["detection_latency_seconds"] for i in incidents)
    assert 10 <= len(incidents) <= 16
    assert latencies[0] < 60
    assert latencies[-1] > 3600
    assert any(i["detected_by"] == "human" for i in incidents)
    assert len({i["source"] for i in incidents}) >= 5
    week_ago = now - timedelta(days=8)
    assert all(week_ago <= at(i["started_at"]) <= now for i in incidents)
    # Deploys shortly before some incidents are in their timelines as candidate factors.
    with_deploys = 0
    for inc in incidents:
        detail = await (await client.get(f"/v1/incidents/{inc['id']}",
                                         headers=api_headers())).json()
        with_deploys += any(e["marker"] == "deploy" for e in detail["timeline"])
    assert with_deploys >= 2


async def test_the_demo_imports_once_a_day(make_client: Any) -> None:
    """Run twice the same day, the demo's deliveries are duplicates of the first run."""
    from hindsight.cli_latency import demo_lines
    from tests.helpers import settings_for_tests

    client = await make_client()
    now = datetime(2025, 6, 18, 15, 20, tzinfo=UTC)
    first = demo_lines(settings_for_tests(), now)
    again = demo_lines(settings_for_tests(), now + timedelta(hours=3))
    assert first == again
    for _ in range(2):
        response = await client.post("/v1/deliveries/import", data=b"\n".join(first),
                                     headers=api_headers())
    results = (await response.json())["results"]
    assert all(r["duplicate"] for r in results)
