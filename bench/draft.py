"""Draft time through the server (issues 5 and 11): GET /v1/incidents/{id}/postmortem for one
incident with 10,000 signals and 200 timeline entries, p50 and p99 over 200 requests,
beside GET /v1/incidents/{id} for the same incident as the baseline. Goal (issue 11):
p99 < 25 ms, Markdown and JSON.

The server keeps each stored version of an incident decoded, and the drafts rendered
from it (projections/web/routes.py, StoredIncidents): the rows above are that steady state.
The "new version" rows rewrite the incident's row (the same document, a new row version)
before each request, untimed, so the server reads, decodes and renders it afresh: what
the first request after the projector changed the incident costs.

The incident is built from real deliveries, imported through POST /v1/deliveries/import:
Alertmanager notifications of one group of 100 alerts (the firing fixture's alert with
the fingerprint and instance varied), first firing, then 98 repeats of the whole group,
then the group resolved: 100 failing and 100 recovered entries, 9,800 repeats.

    .venv/bin/python bench/draft.py [--requests 200] [--subjects 100] [--repeats 98]

PostgreSQL: ``HINDSIGHT_BENCH_DATABASE_URL`` when set, else the embedded server under
``.hindsight/bench-pg``, started and stopped here (see bench/_common.py).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import _common
import aiohttp
import asyncpg
import orjson
from aiohttp import web

from hindsight.app import create_app
from hindsight.settings import load_settings
from ingest.signals import format_time
from projections.runtime.projector import PROJECTOR

API_TOKEN = "bench-api-token-0123"  # noqa: S105 (a throwaway server on loopback)
SOURCE_TOKEN = "bench-alertmanager-token"  # noqa: S105
START = datetime(2025, 3, 14, 9, 58, 12, tzinfo=UTC)


def deliveries(subjects: int, repeats: int) -> list[bytes]:
    """JSON Lines for the import: firing, ``repeats`` repeats, resolved."""
    fixture = orjson.loads((_common.FIXTURES / "firing.json").read_bytes())["body"]
    template = fixture["alerts"][0]
    headers = {"Content-Type": "application/json", "User-Agent": "Alertmanager/0.27.0",
               "Authorization": f"Bearer {SOURCE_TOKEN}"}

    def group(status: str, note: str) -> dict[str, Any]:
        body: dict[str, Any] = copy.deepcopy(fixture)
        body["status"] = status
        alerts = []
        for n in range(subjects):
            alert = copy.deepcopy(template)
            alert["fingerprint"] = f"{n:016x}"
            alert["labels"]["instance"] = f"10.42.{n // 250}.{n % 250}:8080"
            starts = START + timedelta(seconds=n)
            alert["startsAt"] = format_time(starts)
            alert["status"] = status
            if status == "resolved":
                alert["endsAt"] = format_time(starts + timedelta(minutes=50))
            alert["annotations"]["description"] += f" ({note})"
            alerts.append(alert)
        body["alerts"] = alerts
        return body

    bodies = [group("firing", "first notification")]
    bodies += [group("firing", f"repeat {r + 1}") for r in range(repeats)]
    bodies.append(group("resolved", "resolved"))
    lines = []
    for number, body in enumerate(bodies):
        received = START + timedelta(minutes=1, seconds=20 * number)
        lines.append(orjson.dumps({"source": "alertmanager", "received_at": format_time(received),
                                   "headers": headers, "body": orjson.dumps(body).decode()}))
    return lines


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return (statistics.median(ordered), _common.percentile(ordered, 0.99), ordered[-1])


async def run(args: argparse.Namespace) -> None:
    async with _common.databases() as dbs:
        url = await dbs.fresh("bench_draft")
        base = load_settings(environ={}, config=None)
        settings = base.model_validate({
            **base.model_dump(),
            "api": {"tokens": [API_TOKEN]},
            "sources": {"alertmanager": {"token": SOURCE_TOKEN}},
        })
        app = create_app(settings, database_url=url)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        root = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        try:
            async with aiohttp.ClientSession(headers=auth) as http:
                lines = deliveries(args.subjects, args.repeats)
                began = time.perf_counter()
                async with http.post(f"{root}/v1/deliveries/import",
                                     data=b"\n".join(lines)) as answer:
                    results = (await answer.json())["results"]
                assert all(r["status"] == 202 for r in results), results[:3]
                last = max(r["delivery"] for r in results)
                assert await app[PROJECTOR].wait_for(last, 600)
                built = time.perf_counter() - began
                async with http.get(f"{root}/v1/incidents") as answer:
                    [summary] = (await answer.json())["incidents"]
                incident = summary["id"]
                async with http.get(f"{root}/v1/incidents/{incident}") as answer:
                    doc = await answer.json()

                steady = {
                    "GET /v1/incidents/{id} (baseline)": f"/v1/incidents/{incident}",
                    "GET .../postmortem (Markdown)": f"/v1/incidents/{incident}/postmortem",
                    "GET .../postmortem?format=json": (
                        f"/v1/incidents/{incident}/postmortem?format=json"),
                }
                fresh = {
                    "new version: GET /v1/incidents/{id}": f"/v1/incidents/{incident}",
                    "new version: .../postmortem": f"/v1/incidents/{incident}/postmortem",
                    "new version: ...?format=json": (
                        f"/v1/incidents/{incident}/postmortem?format=json"),
                }
                samples: dict[str, list[float]] = {name: [] for name in {**steady, **fresh}}
                sizes: dict[str, int] = {}
                rewriter = await asyncpg.connect(url)
                for paths in (steady, fresh):  # the second phase rewrites before each
                    for round_ in range(args.warmup + args.requests):
                        for name, path in paths.items():  # interleaved: same conditions
                            if paths is fresh:
                                await rewriter.execute(
                                    "UPDATE incidents SET doc = doc WHERE id = $1", incident)
                            started = time.perf_counter()
                            async with http.get(root + path) as answer:
                                body = await answer.read()
                                assert answer.status == 200, body[:200]
                            if round_ >= args.warmup:
                                samples[name].append((time.perf_counter() - started) * 1000)
                                sizes[name] = len(body)
                await rewriter.close()
        finally:
            await runner.cleanup()

        print(f"machine: {_common.machine()}")
        print(await dbs.describe())
        print(f"incident {incident}: {doc['signal_count']} signals, "
              f"{len(doc['timeline'])} timeline entries, "
              f"{sum(e['repeats'] for e in doc['timeline'])} repeats folded "
              f"(built from {len(lines)} imported deliveries in {built:.1f} s)")
        print(f"{args.requests} requests each, after {args.warmup} warm-up, one client, "
              "loopback, interleaved")
        print(f"{'request':<38} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'bytes':>9}")
        for name, values in samples.items():
            p50, p99, top = percentiles(values)
            print(f"{name:<38} {p50:>8.2f} {p99:>8.2f} {top:>8.2f} {sizes[name]:>9}")
        base_p50 = percentiles(samples["GET /v1/incidents/{id} (baseline)"])[0]
        md_p50, md_p99, _ = percentiles(samples["GET .../postmortem (Markdown)"])
        json_p99 = percentiles(samples["GET .../postmortem?format=json"])[1]
        worst = max(md_p99, json_p99)
        print(f"draft / baseline (p50): {md_p50 / base_p50:.2f}x; "
              f"goal p99 < 25 ms (Markdown and JSON): {'met' if worst < 25 else 'NOT met'} "
              f"({md_p99:.2f} ms, {json_p99:.2f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--subjects", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=98)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
