"""Action items through HTTP: POST /v1/incidents/{id}/action-items, the item events
(assign, due date, ticket, complete), GET /v1/action-items with its filters, the weekly
review view, and ``hindsight review``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hindsight.cli import main
from projections.runtime.projector import PROJECTOR
from tests.api.test_postmortem import SERVICES, cli_environment, missed_cron_run, post
from tests.helpers import api_headers

TODAY = "2025-03-20"  # the review's date in every test: never the clock


async def items(client: Any, query: str = "") -> list[dict[str, Any]]:
    response = await client.get(f"/v1/action-items{query}", headers=api_headers())
    assert response.status == 200, await response.text()
    found: list[dict[str, Any]] = (await response.json())["action_items"]
    return found


async def review(client: Any) -> dict[str, Any]:
    response = await client.get(f"/v1/action-items/review?today={TODAY}", headers=api_headers())
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def titles(listed: list[dict[str, Any]]) -> list[str]:
    return [i["title"] for i in listed]


async def add(client: Any, incident: str, **fields: Any) -> str:
    answer = await post(client, f"/v1/incidents/{incident}/action-items", fields)
    assert await client.app[PROJECTOR].wait_for(answer["event"])
    return str(answer["item"])


async def event(client: Any, item: str, **fields: Any) -> None:
    answer = await post(client, f"/v1/action-items/{item}/events", fields)
    assert await client.app[PROJECTOR].wait_for(answer["event"])


@pytest.fixture
async def seeded(make_client: Any) -> tuple[Any, str, dict[str, str]]:
    """One incident with four items, as of 2025-03-20: one overdue and assigned, one
    unassigned without a due date, one due beyond 14 days, one done."""
    client = await make_client(projector=True, services=SERVICES)
    incident = await missed_cron_run(client)
    ids = {
        "overdue": await add(client, incident, title="Shorten the reconciliation grace period",
                             owner="payments team", due_date="2025-03-18"),
        "unassigned": await add(client, incident, title="Add a runbook for missed runs"),
        "far": await add(client, incident, title="Move reconciliation to the job queue",
                         owner="platform", due_date="2025-05-01"),
        "done": await add(client, incident, title="Re-run the missed reconciliation",
                          owner="payments team", due_date="2025-03-14"),
    }
    await event(client, ids["done"], type="complete")
    return client, incident, ids


async def test_an_item_is_added_assigned_given_a_date_and_a_ticket_and_completed(
        make_client: Any) -> None:
    client = await make_client(projector=True, services=SERVICES)
    incident = await missed_cron_run(client)
    item = await add(client, incident, title="Alert on payment-reconciliation within 5 minutes")
    [added] = await items(client)
    assert added["status"] == "open"
    assert added["flags"] == ["no owner", "no due date"]

    await event(client, item, type="assign", owner="payments team")
    await event(client, item, type="due_date", due_date="2025-03-25")
    await event(client, item, type="ticket", url="https://tracker.example.com/PAY-77")
    [ready] = await items(client)
    assert (ready["owner"], ready["due_date"], ready["ticket_url"]) == (
        "payments team", "2025-03-25", "https://tracker.example.com/PAY-77")
    assert ready["incident_id"] == incident

    await event(client, item, type="complete", completed_at="2025-03-24T09:00:00Z")
    [done] = await items(client)
    assert done["status"] == "done"
    assert done["completed_at"] == "2025-03-24T09:00:00Z"
    assert done["flags"] == []


async def test_the_filters_choose_by_status_incident_overdue_and_owner(
        seeded: tuple[Any, str, dict[str, str]]) -> None:
    client, incident, _ = seeded
    assert titles(await items(client, "?status=done")) == ["Re-run the missed reconciliation"]
    assert len(await items(client, "?status=open")) == 3
    assert len(await items(client, f"?incident={incident}")) == 4
    assert await items(client, "?incident=inc_other") == []
    assert titles(await items(client, f"?status=open&overdue=true&today={TODAY}")) == [
        "Shorten the reconciliation grace period"]
    assert titles(await items(client, "?unassigned=true")) == ["Add a runbook for missed runs"]


async def test_the_weekly_review_lists_open_overdue_unassigned_and_far_off_items(
        seeded: tuple[Any, str, dict[str, str]]) -> None:
    client, _, ids = seeded
    body = await review(client)
    assert body["today"] == TODAY

    def chosen(key: str) -> list[str]:
        return [i["id"] for i in body[key]]

    # Soonest due first, no due date last.
    assert chosen("open") == [ids["overdue"], ids["far"], ids["unassigned"]]
    assert chosen("overdue") == [ids["overdue"]]
    assert chosen("unassigned") == [ids["unassigned"]]
    assert chosen("due_beyond_14_days") == [ids["far"]]


async def test_bad_item_requests_are_refused_with_the_reason(make_client: Any) -> None:
    client = await make_client(projector=True, services=SERVICES)
    incident = await missed_cron_run(client)
    item = await add(client, incident, title="Add a runbook for missed runs")

    async def status(path: str, body: dict[str, Any]) -> tuple[int, str]:
        response = await client.post(path, json=body, headers=api_headers())
        return response.status, (await response.json())["error"]

    assert (await status("/v1/incidents/inc_nope/action-items", {"title": "x"}))[0] == 404
    assert (await status(f"/v1/incidents/{incident}/action-items", {}))[0] == 422
    code, error = await status(f"/v1/action-items/{item}/events",
                               {"type": "due_date", "due_date": "next week"})
    assert code == 422
    assert error.startswith("due_date:")
    assert (await status(f"/v1/action-items/{item}/events",
                         {"type": "ticket", "url": "javascript:alert(1)"}))[0] == 422
    assert (await status(f"/v1/action-items/{item}/events",
                         {"type": "notification_attempted"}))[0] == 422
    assert (await status("/v1/action-items/ai_missing/events",
                         {"type": "assign", "owner": "x"}))[0] == 404
    bad_date = await client.get("/v1/action-items/review?today=soon", headers=api_headers())
    assert bad_date.status == 400
    bad_status = await client.get("/v1/action-items?status=maybe", headers=api_headers())
    assert bad_status.status == 400


async def test_the_draft_lists_the_incidents_items_with_their_flags(
        seeded: tuple[Any, str, dict[str, str]]) -> None:
    client, incident, ids = seeded
    response = await client.get(f"/v1/incidents/{incident}/postmortem?format=json",
                                headers=api_headers())
    body = await response.json()
    [section] = [s for s in body["sections"] if s["id"] == "action_items"]
    recorded = {i["id"]: i for i in section["items"] if i["origin"] == "recorded"}
    assert set(recorded) == set(ids.values())
    assert recorded[ids["far"]]["flags"] == ["due more than 14 days after the draft date"]
    assert recorded[ids["unassigned"]]["flags"] == ["no owner", "no due date"]
    assert recorded[ids["done"]]["status"] == "done"


async def test_hindsight_review_prints_the_weekly_review(
        seeded: tuple[Any, str, dict[str, str]], database_url: str,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    _, _, ids = seeded
    cli_environment(monkeypatch, tmp_path, database_url)
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["review", "--today", TODAY]) == 0
    out = capsys.readouterr().out
    sections = {block.splitlines()[0]: block.splitlines()[1:]
                for block in out.split("\n\n")[1:]}
    assert out.startswith(f"Action-item review for {TODAY}\n")
    assert [line.split()[0] for line in sections["Overdue (1)"]] == ["2025-03-18"]
    assert ids["unassigned"] in sections["Unassigned (1)"][0]
    assert ids["far"] in sections["Due more than 14 days out (1)"][0]
    assert len(sections["Open (3)"]) == 3
    assert ids["done"] not in out


# --- no write stored twice (issue 12, item 1) -------------------------------------------

async def test_action_item_requests_retried_with_their_idempotency_key_are_stored_once(
        make_client: Any) -> None:
    """Issue 12, item 1; /openapi.json: "An Idempotency-Key header makes a retry answer
    as the first". Adding an item (whose id the server picks) and an item event, each
    sent twice with one key, store one event each; the retry names the same item."""
    from ingest.keys import STORE

    client = await make_client(projector=True, services=SERVICES)
    incident = await missed_cron_run(client)
    headers = {**api_headers(), "Idempotency-Key": "add-91c2"}
    path = f"/v1/incidents/{incident}/action-items"
    body = {"title": "Alert on a missed reconciliation run", "owner": "payments team"}
    added = [await (await client.post(path, json=body, headers=headers)).json()
             for _ in range(2)]
    assert added[1]["item"] == added[0]["item"]
    assert added[1]["event"] == added[0]["event"]
    assert [a["duplicate"] for a in added] == [False, True]

    item = added[0]["item"]
    headers = {**api_headers(), "Idempotency-Key": "assign-44d0"}
    for _ in range(2):
        response = await client.post(f"/v1/action-items/{item}/events",
                                     json={"type": "assign", "owner": "platform"},
                                     headers=headers)
        assert response.status == 201, await response.text()
    stored = await client.app[STORE].read_stream(f"action-item-{item}")
    assert [e.type for e in stored] == ["action_item.added", "action_item.assigned"]


async def test_an_item_event_whose_commit_answer_is_lost_is_stored_once(
        make_client: Any) -> None:
    """Issue 12, item 1: without an Idempotency-Key the server keys the event before the
    store's first try, so the retry of a commit whose answer was lost finds it."""
    from ingest.keys import STORE
    from tests.ingest.test_store import LosingPool

    client = await make_client(projector=True, services=SERVICES)
    incident = await missed_cron_run(client)
    item = await add(client, incident, title="Alert on a missed reconciliation run")
    store = client.app[STORE]
    lossy = LosingPool(store.pool)
    store.pool = lossy
    try:
        response = await client.post(f"/v1/action-items/{item}/events",
                                     json={"type": "complete"}, headers=api_headers())
    finally:
        store.pool = lossy._pool
    assert lossy.to_lose == 0, "the commit's answer was lost once"
    assert response.status == 201, await response.text()
    assert (await response.json())["version"] == 2
    stored = await store.read_stream(f"action-item-{item}")
    assert [e.type for e in stored] == ["action_item.added", "action_item.completed"]
