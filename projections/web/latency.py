"""Detection latency (TIMELINE.md): the figures by week, month, service, source, kind or
severity, read from the views of ``schema/0003_detection_latency.sql``.

``GET /v1/detection-latency?group_by=&since=&until=`` answers API.md's rows;
``GET /v1/detection-latency/worst`` lists the slowest detections of a period (the
dashboard's list, linking to each draft). ``hindsight latency`` prints the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import asyncpg
from aiohttp import web

from ingest.keys import POOL
from ingest.signals import format_time
from projections.web.routes import json_response, parse_time_param, problem

GroupBy = Literal["week", "month", "service", "source", "kind", "severity", "all"]
GROUP_BYS: tuple[str, ...] = get_args(GroupBy)

# Per grouping: what is shown, what is grouped on, and which view: module constants,
# never request data, go into SQL. Weeks are grouped on the date (index order, see
# schema/0003) and formatted once per group.
_GROUP_COLUMN: dict[str, tuple[str, str, str]] = {
    "week": ("to_char(week, 'YYYY-MM-DD')", "week", "detection_latency"),
    "month": ("month", "month", "detection_latency"),
    "service": ("service", "service", "detection_latency"),
    "source": ("source", "source", "detection_latency"),
    "severity": ("severity", "severity", "detection_latency"),
    "kind": ("kind", "kind", "detection_latency_kinds"),
    # An extension of API.md: one row, "all", for the whole period's figures
    # (percentiles do not add up from other groups).
    "all": ("'all'::text", "1", "detection_latency"),
}

# The same aggregates as the detection_latency_by_* views (a test holds them equal).
_AGGREGATES = """count(*) AS incidents,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_seconds) AS p50_seconds,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY latency_seconds) AS p90_seconds,
       max(latency_seconds) AS max_seconds,
       count(*) FILTER (WHERE p1_over_5m) AS p1_over_5m,
       count(*) FILTER (WHERE over_30m) AS over_30m"""


@dataclass(frozen=True, slots=True)
class LatencyRow:
    group: str
    incidents: int
    p50_seconds: float
    p90_seconds: float
    max_seconds: float
    p1_over_5m: int
    over_30m: int

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "incidents": self.incidents,
                "p50_seconds": self.p50_seconds, "p90_seconds": self.p90_seconds,
                "max_seconds": self.max_seconds, "p1_over_5m": self.p1_over_5m,
                "over_30m": self.over_30m}


def _range(since: datetime | None, until: datetime | None) -> tuple[str, list[Any]]:
    """``started_at`` in [since, until): the same convention as GET /v1/incidents."""
    clauses: list[str] = []
    args: list[Any] = []
    for value, op in ((since, ">="), (until, "<")):
        if value is not None:
            args.append(value)
            clauses.append(f"started_at {op} ${len(args)}")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def latency_sql(group_by: str, since: datetime | None = None,
                until: datetime | None = None) -> tuple[str, list[Any]]:
    shown, grouped, view = _GROUP_COLUMN[group_by]
    where, args = _range(since, until)
    sql = (f'SELECT {shown} AS "group", {_AGGREGATES}\n'
           f'FROM {view}{where}\nGROUP BY {grouped} ORDER BY {grouped}')
    return sql, args


async def latency_rows(conn: asyncpg.Connection | asyncpg.Pool, group_by: str,
                       since: datetime | None = None,
                       until: datetime | None = None) -> list[LatencyRow]:
    """The aggregate rows for incidents that started in [since, until)."""
    if group_by not in _GROUP_COLUMN:
        raise ValueError(f"group_by: one of {', '.join(GROUP_BYS)}")
    sql, args = latency_sql(group_by, since, until)
    rows = await conn.fetch(sql, *args)
    return [LatencyRow(group=r["group"], incidents=r["incidents"],
                       p50_seconds=r["p50_seconds"], p90_seconds=r["p90_seconds"],
                       max_seconds=r["max_seconds"], p1_over_5m=r["p1_over_5m"],
                       over_30m=r["over_30m"]) for r in rows]


async def worst_incidents(conn: asyncpg.Connection | asyncpg.Pool, limit: int,
                          since: datetime | None = None,
                          until: datetime | None = None) -> list[dict[str, Any]]:
    """The slowest detections of the period, slowest first (ties: earlier start)."""
    where, args = _range(since, until)
    args.append(limit)
    rows = await conn.fetch(
        f"""SELECT id, title, service, severity, started_at, detected_at, latency_seconds,
                   detected_by, verdict, source
            FROM detection_latency{where}
            ORDER BY latency_seconds DESC, started_at, id LIMIT ${len(args)}""", *args)
    return [{"id": r["id"], "title": r["title"], "service": r["service"],
             "severity": r["severity"], "started_at": format_time(r["started_at"]),
             "detected_at": format_time(r["detected_at"]),
             "detection_latency_seconds": r["latency_seconds"],
             "detected_by": r["detected_by"], "detection_verdict": r["verdict"],
             "source": r["source"]} for r in rows]


def _period(request: web.Request) -> tuple[datetime | None, datetime | None]:
    return parse_time_param(request, "since"), parse_time_param(request, "until")


async def get_latency(request: web.Request) -> web.Response:
    group_by = request.query.get("group_by") or "week"
    if group_by not in _GROUP_COLUMN:
        return problem(400, f"group_by: one of {', '.join(GROUP_BYS)}")
    since, until = _period(request)
    rows = await latency_rows(request.app[POOL], group_by, since, until)
    return json_response({"rows": [r.to_json() for r in rows]})


async def get_worst(request: web.Request) -> web.Response:
    try:
        limit = int(request.query.get("limit") or 10)
    except ValueError:
        return problem(400, "limit: a number from 1 to 100")
    if not 1 <= limit <= 100:
        return problem(400, "limit: a number from 1 to 100")
    since, until = _period(request)
    found = await worst_incidents(request.app[POOL], limit, since, until)
    return json_response({"incidents": found})


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/v1/detection-latency", get_latency),
        web.get("/v1/detection-latency/worst", get_worst),
    ]
