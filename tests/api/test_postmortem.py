"""GET /v1/incidents/{id}/postmortem and ``hindsight draft``, through the running server,
for incidents built from real recorded deliveries (imported as JSON Lines).

The golden drafts in ``tests/api/golden/`` are the full Markdown and JSON the server
answers for two scenarios, kept as reviewed files: a change to a draft shows as a diff.
After reading a changed draft and judging it right, rewrite them with
``HINDSIGHT_UPDATE_GOLDEN=1 pytest tests/api/test_postmortem.py``.

The scenario builders here are shared by the status-page, blame and benchmark code.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from markdown_it import MarkdownIt

from hindsight.cli import main
from ingest.signals import format_time
from projections.runtime.projector import PROJECTOR, READ_MODELS
from tests.fixtures import Fixture, load_fixture
from tests.helpers import api_headers, signed_headers

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("HINDSIGHT_UPDATE_GOLDEN") == "1"

# What makes up one service, as a team would configure it (API.md, [services]).
SERVICES = {"checkout": ["Checkout API", "acme/checkout-service*"]}

# A checkout outage: a failed CI run, a deploy that starts as the error rate climbs, the
# public uptime check fails, PagerDuty pages and is acknowledged, everything recovers.
CHECKOUT_OUTAGE = (
    "github/workflow_run_failure",
    "github/deployment_status_in_progress",
    "alertmanager/firing",
    "uptime-kuma/down",
    "github/deployment_status_failure",
    "pagerduty/incident_triggered",
    "pagerduty/incident_acknowledged",
    "pagerduty/incident_annotated",
    "uptime-kuma/up",
    "alertmanager/resolved",
    "github/deployment_status_success",
    "pagerduty/incident_resolved",
)
# The nightly payment-reconciliation job fails, then misses its 02:00 (+02:00) run;
# Healthchecks reports it down after its grace period; a later run pings.
MISSED_CRON_RUN = (
    "healthchecks/down_failure_ping",
    "healthchecks/down_cron_missed_run",
    "healthchecks/up",
)
# What the team's status page shows ([status] public_services): checkout only.
STATUS = {"public_services": {"checkout": "Checkout"}}
# A P3 disk alert on the orders database: not something users saw.
ORDERS_DB = ("grafana/grouped_firing", "grafana/resolved")


def fixtures(names: Iterable[str]) -> list[Fixture]:
    return [load_fixture(*name.split("/")) for name in names]


def import_body(chosen: Sequence[Fixture]) -> bytes:
    """JSON Lines of recorded deliveries, each signed as its tool signs it, at its time."""
    lines = []
    for fixture in chosen:
        headers = signed_headers(fixture.source, fixture.body, fixture.headers,
                                 at=fixture.received_at)
        lines.append(orjson.dumps({
            "source": fixture.source,
            "received_at": format_time(fixture.received_at),
            "headers": headers,
            "body": fixture.body.decode("utf-8"),
        }))
    return b"\n".join(lines) + b"\n"


async def import_deliveries(client: Any, chosen: Sequence[Fixture],
                            accept: Sequence[int] = (200, 202)) -> int:
    """Import and wait until the projector has folded them; the last position.
    ``accept``: the answers expected per line (400 and 422 are stored too)."""
    response = await client.post("/v1/deliveries/import", data=import_body(chosen),
                                 headers=api_headers())
    assert response.status == 200, await response.text()
    results = (await response.json())["results"]
    assert all(r["status"] in accept for r in results), results
    last = max(r["delivery"] for r in results)
    assert await client.app[PROJECTOR].wait_for(last)
    return int(last)


async def incident_of(client: Any, service: str) -> str:
    listing = await (await client.get(f"/v1/incidents?service={service}",
                                      headers=api_headers())).json()
    [incident] = listing["incidents"]
    return str(incident["id"])


async def post(client: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=api_headers())
    assert response.status == 201, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def settle(client: Any, answer: dict[str, Any]) -> None:
    assert await client.app[PROJECTOR].wait_for(answer["event"])


async def checkout_outage(client: Any) -> str:
    """The outage and four recorded action items: one good, one vague, one due too late,
    one done. (No engineer's note: a manual event is recorded at today's time, which is
    past the engine's 30-day retention for these 2025 deliveries, so it would be ignored.)
    """
    await import_deliveries(client, fixtures(CHECKOUT_OUTAGE))
    incident = await incident_of(client, "checkout")
    good = await post(client, f"/v1/incidents/{incident}/action-items", {
        "title": "Add a smoke test of the checkout health endpoint to the deploy pipeline"})
    await post(client, f"/v1/action-items/{good['item']}/events",
               {"type": "assign", "owner": "checkout team"})
    await post(client, f"/v1/action-items/{good['item']}/events",
               {"type": "due_date", "due_date": "2025-03-21"})
    await post(client, f"/v1/action-items/{good['item']}/events",
               {"type": "ticket", "url": "https://tracker.example.com/CHK-812"})
    await post(client, f"/v1/incidents/{incident}/action-items", {"title": "Improve monitoring"})
    await post(client, f"/v1/incidents/{incident}/action-items", {
        "title": "Document the rollback procedure for the checkout service",
        "owner": "SRE on-call", "due_date": "2025-04-30"})
    done = await post(client, f"/v1/incidents/{incident}/action-items", {
        "title": "Roll back 4f2c9e1", "owner": "checkout team", "due_date": "2025-03-14"})
    last = await post(client, f"/v1/action-items/{done['item']}/events",
                      {"type": "complete", "completed_at": "2025-03-14T10:30:00Z"})
    await settle(client, last)
    return incident


async def missed_cron_run(client: Any) -> str:
    await import_deliveries(client, fixtures(MISSED_CRON_RUN))
    return await incident_of(client, "payments")


SCENARIOS = {"checkout_outage": checkout_outage, "missed_cron_run": missed_cron_run}


async def draft(client: Any, incident: str, query: str = "", **headers: str) -> Any:
    response = await client.get(f"/v1/incidents/{incident}/postmortem{query}",
                                headers={**api_headers(), **headers})
    assert response.status == 200, await response.text()
    return response


def stable(text: str, item_ids: Sequence[str]) -> str:
    """The draft with the action-item ids (random per POST, so never the same twice)
    replaced by placeholders in draft order."""
    for number, item_id in enumerate(item_ids, start=1):
        text = text.replace(item_id, f"ai_{number:012d}")
    return text


def _compare(path: Path, actual: str) -> None:
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True),
            fromfile=f"{path.name} (golden)", tofile=f"{path.name} (served)"))
        pytest.fail(f"the served draft differs from {path}:\n{diff}", pytrace=False)


async def item_ids(client: Any, incident: str) -> list[str]:
    """The incident's recorded item ids, in draft order."""
    body = await (await draft(client, incident, "?format=json")).json()
    [items] = [s for s in body["sections"] if s["id"] == "action_items"]
    return [i["id"] for i in items["items"] if i["id"]]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_the_served_drafts_match_their_golden_files(make_client: Any, name: str) -> None:
    """The status page lists checkout, not payments: the checkout outage's public summary
    is due, the 2 a.m. reconciliation job's is not (its P1 does not publish it)."""
    client = await make_client(projector=True, services=SERVICES, status=STATUS)
    incident = await SCENARIOS[name](client)
    ids = await item_ids(client, incident)
    markdown = await (await draft(client, incident)).text()
    as_json = await (await draft(client, incident, "?format=json")).json()
    _compare(GOLDEN / f"{name}.md", stable(markdown, ids))
    _compare(GOLDEN / f"{name}.json",
             stable(json.dumps(as_json, indent=2, ensure_ascii=False) + "\n", ids))


async def test_markdown_is_the_default_and_json_is_chosen_by_accept_or_format(
        make_client: Any) -> None:
    client = await make_client(projector=True, services=SERVICES)
    incident = await missed_cron_run(client)
    default = await draft(client, incident)
    assert default.content_type == "text/markdown"
    assert (await default.text()).startswith("# Postmortem draft: ")
    by_accept = await draft(client, incident, Accept="application/json")
    by_format = await draft(client, incident, "?format=json")
    assert by_accept.content_type == by_format.content_type == "application/json"
    assert await by_accept.read() == await by_format.read()
    body = await by_format.json()
    assert [s["id"] for s in body["sections"]] == [
        "summary", "timeline", "contributing_factors", "action_items", "detection",
        "review_cadence", "public_summary"]


async def test_the_draft_date_parameter_moves_the_due_dates_and_is_validated(
        make_client: Any) -> None:
    client = await make_client(projector=True, services=SERVICES)
    incident = await missed_cron_run(client)
    default = await (await draft(client, incident, "?format=json")).json()
    assert default["draft_date"] == "2025-03-14"  # the resolution date, never today
    later = await (await draft(client, incident, "?format=json&draft_date=2025-03-20")).json()
    assert later["draft_date"] == "2025-03-20"
    [items] = [s for s in later["sections"] if s["id"] == "action_items"]
    suggested = [i for i in items["items"] if i["origin"] == "suggested"]
    assert suggested
    assert {i["due_date"] for i in suggested} == {"2025-04-03"}  # 14 days after the draft
    bad = await client.get(f"/v1/incidents/{incident}/postmortem?draft_date=20.3.2025",
                           headers=api_headers())
    assert bad.status == 400


async def test_an_unknown_incident_has_no_draft(make_client: Any) -> None:
    client = await make_client()
    response = await client.get("/v1/incidents/inc_nope/postmortem", headers=api_headers())
    assert response.status == 404


async def test_the_draft_needs_the_api_token(make_client: Any) -> None:
    client = await make_client()
    response = await client.get("/v1/incidents/inc_nope/postmortem")
    assert response.status == 401


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_the_markdown_renders_to_html_with_every_section_and_timeline_row(
        make_client: Any, name: str) -> None:
    """GFM tables break on an unescaped ``|`` and headings on a stray ``#``: a rendering
    with the right number of sections and table rows shows the escaping held."""
    client = await make_client(projector=True, services=SERVICES)
    incident = await SCENARIOS[name](client)
    markdown = await (await draft(client, incident)).text()
    body = await (await draft(client, incident, "?format=json")).json()
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert len(re.findall(r"<h2>", html)) == 7
    [timeline] = [s for s in body["sections"] if s["id"] == "timeline"]
    tbody = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert tbody.count("<tr>") == len(timeline["rows"])
    assert all(row.count("<td") == 6 for row in tbody.split("</tr>")[:-1])
    assert "<script" not in html.lower()


async def test_the_same_log_gives_the_same_bytes_after_a_full_rebuild(
        make_client: Any, database_url: str) -> None:
    """Drop every read model and the checkpoint, project the log again from the start:
    the draft is byte for byte what it was."""
    client = await make_client(projector=True, services=SERVICES)
    incident = await checkout_outage(client)
    before_md = await (await draft(client, incident)).read()
    before_json = await (await draft(client, incident, "?format=json")).read()
    assert before_md == await (await draft(client, incident)).read()
    await client.close()

    conn = await asyncpg.connect(database_url)
    try:
        last = await conn.fetchval("SELECT max(position) FROM events")
        await conn.execute(f"TRUNCATE {', '.join(READ_MODELS)}")
        await conn.execute("DELETE FROM projector_checkpoint")
        assert await conn.fetchval("SELECT count(*) FROM incidents") == 0
    finally:
        await conn.close()

    rebuilt = await make_client(projector=True, services=SERVICES)
    assert await rebuilt.app[PROJECTOR].wait_for(last)
    assert await (await draft(rebuilt, incident)).read() == before_md
    assert await (await draft(rebuilt, incident, "?format=json")).read() == before_json


# --- hindsight draft ---------------------------------------------------------------


def cli_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> None:
    config = tmp_path / "hindsight.toml"
    config.write_text("", encoding="utf-8")
    monkeypatch.setenv("HINDSIGHT_CONFIG", str(config))
    monkeypatch.setenv("HINDSIGHT_DATABASE_URL", database_url)


async def test_hindsight_draft_prints_the_markdown_the_server_answers(
        make_client: Any, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    client = await make_client(projector=True, services=SERVICES)
    incident = await checkout_outage(client)
    served = await (await draft(client, incident)).text()
    cli_environment(monkeypatch, tmp_path, database_url)
    capsys.readouterr()
    # main runs its own event loop (asyncio.run): give it a thread of its own.
    assert await asyncio.to_thread(main, ["draft", incident]) == 0
    assert capsys.readouterr().out == served


async def test_hindsight_draft_writes_json_with_a_draft_date_to_a_file(
        make_client: Any, database_url: str, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    client = await make_client(projector=True, services=SERVICES)
    incident = await missed_cron_run(client)
    served = await (await draft(client, incident, "?format=json&draft_date=2025-03-20")).json()
    cli_environment(monkeypatch, tmp_path, database_url)
    out = tmp_path / "draft.json"
    code = await asyncio.to_thread(main, ["draft", incident, "--format", "json", "--out",
                                          str(out), "--draft-date", "2025-03-20"])
    assert code == 0
    assert json.loads(out.read_text(encoding="utf-8")) == served


async def test_hindsight_draft_of_an_unknown_incident_fails_with_a_message(
        make_client: Any, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    await make_client()  # migrates the database
    cli_environment(monkeypatch, tmp_path, database_url)
    assert await asyncio.to_thread(main, ["draft", "inc_nope"]) == 1
    assert "no incident 'inc_nope'" in capsys.readouterr().err
