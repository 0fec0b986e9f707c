"""Manual events through HTTP (POST /v1/incidents, POST /v1/incidents/{id}/events):
they are events in the incident's stream and win over what the signals imply.

Engineers' events are recorded at the server's clock, so the outages here happened
earlier today (``BASE``), as they would in production; the times asserted are exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers import api_headers
from tests.scenarios.harness import import_deliveries, incident, incidents, settle
from tests.scenarios.payloads import at, kuma, rfc3339

BASE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)


def s(offset: float) -> datetime:
    return BASE + timedelta(seconds=offset)


def t(offset: float) -> str:
    """``BASE`` + offset seconds as the API writes it."""
    return rfc3339(s(offset))


async def outage(client: Any, monitor: str = "Checkout API", service: str = "checkout",
                 offset: float = 0) -> dict[str, Any]:
    """Uptime Kuma: the monitor down at ``BASE`` + offset, up 20 min later."""
    await import_deliveries(client, [
        kuma(False, s(offset), s(offset + 0.5), monitor=monitor, service=service),
        kuma(True, s(offset + 1200), s(offset + 1200.5), monitor=monitor, service=service),
    ])
    [found] = [i for i in await incidents(client) if i["service"] == service]
    return found


async def post_event(client: Any, incident_id: str, body: dict[str, Any],
                     version: int | None = None) -> Any:
    headers = api_headers()
    if version is not None:
        headers["If-Match"] = f'"{version}"'
    return await client.post(f"/v1/incidents/{incident_id}/events", json=body, headers=headers)


async def test_a_note_lands_on_the_timeline_at_its_own_time(make_client: Any) -> None:
    client = await make_client(projector=True)
    inc = await outage(client)
    response = await post_event(client, inc["id"], {
        "type": "note", "at": t(420), "text": "Rolled back to 9a0be77"})
    assert response.status == 201
    await settle(client)

    doc = await incident(client, inc["id"])
    assert [(e["at"], e["marker"], e["text"]) for e in doc["timeline"]
            if e["source"] == "manual"] == [
        (t(420), "note", "Rolled back to 9a0be77")]
    ats = [at(e["at"]) for e in doc["timeline"]]
    assert ats == sorted(ats)
    assert doc["version"] == 1


async def test_severity_set_by_an_engineer_wins_over_the_signals(make_client: Any) -> None:
    client = await make_client(projector=True)
    inc = await outage(client)
    assert inc["severity"] == "P1"
    await post_event(client, inc["id"], {"type": "severity", "severity": "P3",
                                         "reason": "internal tool only"})
    await settle(client)

    assert (await incident(client, inc["id"]))["severity"] == "P3"


async def test_an_impact_start_correction_moves_started_at_and_the_latency(
    make_client: Any
) -> None:
    client = await make_client(projector=True)
    inc = await outage(client)
    await post_event(client, inc["id"], {
        "type": "impact_start", "started_at": t(-720),
        "evidence": "first 5xx in the load balancer logs"})
    await settle(client)

    doc = await incident(client, inc["id"])
    assert doc["started_at"] == t(-720)
    assert doc["detection_latency_seconds"] == 720.5
    assert doc["duration_seconds"] == 1920.0
    assert doc["detection_verdict"] == "gap"  # a P1 noticed 12 min late
    assert doc["timeline"][0]["marker"] == "started"
    assert doc["timeline"][0]["source"] == "manual"


async def test_a_manual_resolution_wins_over_signals_still_failing(make_client: Any) -> None:
    client = await make_client(projector=True)
    await import_deliveries(client, [kuma(False, s(0), s(0.5))])
    [inc] = await incidents(client)
    assert inc["status"] == "open"
    await post_event(client, inc["id"], {"type": "resolve", "resolved_at": t(1800),
                                         "text": "monitor retired"})
    await settle(client)

    doc = await incident(client, inc["id"])
    assert (doc["status"], doc["resolved_at"], doc["duration_seconds"]) == (
        "resolved", t(1800), 1800.0)
    assert doc["timeline"][-1]["marker"] == "resolved"


async def test_a_merge_keeps_the_older_incident_whichever_was_named(make_client: Any) -> None:
    client = await make_client(projector=True)
    older = await outage(client)
    newer = await outage(client, monitor="Payments API", service="payments", offset=120)
    response = await post_event(client, newer["id"], {"type": "merge", "other_id": older["id"]})
    assert response.status == 201
    await settle(client)

    [survivor] = await incidents(client)
    assert survivor["id"] == older["id"]
    assert survivor["subjects"] == ["Checkout API", "Payments API"]
    absorbed = await incident(client, newer["id"])
    assert absorbed["merged_into"] == older["id"]


async def test_a_stale_version_in_if_match_is_refused_with_409(make_client: Any) -> None:
    client = await make_client(projector=True)
    inc = await outage(client)
    note = {"type": "note", "at": t(300), "text": "Paged the database team"}
    first = await post_event(client, inc["id"], note, version=0)
    assert first.status == 201
    assert (await first.json())["version"] == 1

    stale = await post_event(client, inc["id"], {**note, "text": "Another note"}, version=0)
    assert stale.status == 409
    assert (await stale.json())["version"] == 1
    await settle(client)
    doc = await incident(client, inc["id"])
    assert [e["text"] for e in doc["timeline"] if e["marker"] == "note"] == [
        "Paged the database team"]


async def test_an_event_for_an_unknown_incident_is_404(make_client: Any) -> None:
    client = await make_client(projector=True)
    response = await post_event(client, "inc_0000000000000000", {
        "type": "note", "at": t(300), "text": "x"})
    assert response.status == 404


async def test_as_of_answers_what_was_known_at_that_moment(make_client: Any) -> None:
    """Ten minutes in, the check was down and nothing said it was back: open, no
    resolution. Now we know it recovered after 20 minutes."""
    client = await make_client(projector=True)
    inc = await outage(client)

    then = await incident(client, inc["id"], as_of=t(600))
    assert (then["status"], then["resolved_at"]) == ("open", None)
    assert [e["state"] for e in then["timeline"]] == ["failing", "failing"]
    now = await incident(client, inc["id"])
    assert (now["status"], now["resolved_at"]) == ("resolved", t(1200))
    before = await client.get(f"/v1/incidents/{inc['id']}", params={
        "as_of": t(-60)}, headers=api_headers())
    assert before.status == 404


async def test_a_note_on_an_incident_imported_from_last_year_is_kept(make_client: Any) -> None:
    client = await make_client(projector=True)
    old = at("2025-03-14T10:00:00Z")
    await import_deliveries(client, [
        kuma(False, old, old + timedelta(seconds=0.5)),
        kuma(True, old + timedelta(minutes=20), old + timedelta(minutes=20, seconds=0.5))])
    [inc] = await incidents(client)
    response = await post_event(client, inc["id"], {
        "type": "note", "at": "2025-03-14T10:07:00Z", "text": "Rolled back"}, version=0)
    assert response.status == 201
    await settle(client)

    doc = await incident(client, inc["id"])
    assert doc["version"] == 1
    assert [e["text"] for e in doc["timeline"] if e["marker"] == "note"] == ["Rolled back"]


# --- contradictions: a 422 naming the field (issue 13, item 1; docs/lifecycle.md) -------

async def refused(response: Any) -> str:
    """The 422's field, after checking the message starts with it."""
    assert response.status == 422, await response.text()
    answer = await response.json()
    assert answer["error"].startswith(f"{answer['field']}: ")
    field: str = answer["field"]
    return field


async def test_a_resolution_before_the_start_is_refused(make_client: Any) -> None:
    """TIMELINE.md: duration = resolved_at - started_at; it cannot end before it began."""
    client = await make_client(projector=True)
    await import_deliveries(client, [kuma(False, s(0), s(0.5))])
    [inc] = await incidents(client)
    assert await refused(await post_event(client, inc["id"], {
        "type": "resolve", "resolved_at": t(-60)})) == "resolved_at"
    await settle(client)
    assert (await incident(client, inc["id"]))["status"] == "open"


async def test_a_resolution_before_a_monitor_reported_the_failure_is_refused(
    make_client: Any
) -> None:
    """detected_at is when a monitor told us it was failing (TIMELINE.md, the four
    moments): it was not over before then. Here Uptime Kuma notified 90 s after the
    failure; a resolution 60 s in contradicts it, one 120 s in does not."""
    client = await make_client(projector=True)
    await import_deliveries(client, [kuma(False, s(0), s(90))])
    [inc] = await incidents(client)
    assert inc["detected_at"] == t(90)
    assert await refused(await post_event(client, inc["id"], {
        "type": "resolve", "resolved_at": t(60)})) == "resolved_at"
    assert (await post_event(client, inc["id"], {
        "type": "resolve", "resolved_at": t(120)})).status == 201


async def test_a_declared_incident_may_be_resolved_before_it_was_declared(
    make_client: Any
) -> None:
    """A person declares an outage that is already over (the README's example): detected
    at the declaration, resolved earlier; only the start bounds the resolution."""
    client = await make_client(projector=True)
    answer = await client.post("/v1/incidents", headers=api_headers(), json={
        "service": "storefront", "title": "Failed logins", "started_at": t(0)})
    assert answer.status == 201
    inc = (await answer.json())["incident"]
    # Not projected yet, or projected: the same checks (its declaration is read).
    assert (await post_event(client, inc, {"type": "resolve",
                                           "resolved_at": t(2400)})).status == 201
    assert await refused(await post_event(client, inc, {
        "type": "resolve", "resolved_at": t(-1)})) == "resolved_at"


async def test_a_start_correction_after_the_resolution_is_refused(make_client: Any) -> None:
    client = await make_client(projector=True)
    inc = await outage(client)  # resolved at t(1200)
    assert await refused(await post_event(client, inc["id"], {
        "type": "impact_start", "started_at": t(1260), "evidence": "a log line"})
    ) == "started_at"
    assert (await post_event(client, inc["id"], {
        "type": "impact_start", "started_at": t(-60), "evidence": "a log line"})).status == 201


async def test_an_acknowledgement_before_the_start_is_refused(make_client: Any) -> None:
    client = await make_client(projector=True)
    inc = await outage(client)
    assert await refused(await post_event(client, inc["id"], {
        "type": "acknowledge", "at": t(-300)})) == "at"


async def test_a_merge_into_itself_or_with_no_incident_is_refused(make_client: Any) -> None:
    """Rule 10 merges two incidents: one incident, or one that does not exist, is not two."""
    client = await make_client(projector=True)
    inc = await outage(client)
    assert await refused(await post_event(client, inc["id"], {
        "type": "merge", "other_id": inc["id"]})) == "other_id"
    assert await refused(await post_event(client, inc["id"], {
        "type": "merge", "other_id": "inc_0000000000000000"})) == "other_id"


async def test_a_time_in_the_future_is_refused(make_client: Any) -> None:
    client = await make_client(projector=True)
    inc = await outage(client)
    tomorrow = rfc3339(datetime.now(UTC) + timedelta(days=1))
    assert await refused(await post_event(client, inc["id"], {
        "type": "note", "at": tomorrow, "text": "x"})) == "at"
    declared = await client.post("/v1/incidents", headers=api_headers(), json={
        "service": "storefront", "title": "x", "started_at": tomorrow})
    assert await refused(declared) == "started_at"


async def test_a_malformed_body_names_the_field_even_where_it_shares_the_short_name(
    make_client: Any
) -> None:
    """``severity`` is both the event's short name and its field."""
    client = await make_client(projector=True)
    inc = await outage(client)
    response = await post_event(client, inc["id"], {"type": "severity", "severity": "P9"})
    assert await refused(response) == "severity"
    response = await post_event(client, inc["id"], {"type": "resolve",
                                                    "resolved_at": "2025-03-14T10:00:00"})
    assert await refused(response) == "resolved_at"  # no zone: ambiguous
    response = await post_event(client, inc["id"], {"type": "note", "at": t(60), "text": "x",
                                                    "txet": "typo"})
    assert await refused(response) == "txet"


async def test_action_item_dates_before_the_incident_are_refused(make_client: Any) -> None:
    """An incident's follow-up work cannot be due, or done, before the incident began."""
    client = await make_client(projector=True)
    inc = await outage(client)
    path = f"/v1/incidents/{inc['id']}/action-items"
    before = (s(0) - timedelta(days=2)).date().isoformat()
    answer = await client.post(path, headers=api_headers(), json={
        "title": "Alert on checkout 5xx", "due_date": before})
    assert await refused(answer) == "due_date"
    added = await client.post(path, headers=api_headers(), json={
        "title": "Alert on checkout 5xx"})
    assert added.status == 201
    item = (await added.json())["item"]
    events = f"/v1/action-items/{item}/events"
    assert await refused(await client.post(events, headers=api_headers(), json={
        "type": "due_date", "due_date": before})) == "due_date"
    assert await refused(await client.post(events, headers=api_headers(), json={
        "type": "complete", "completed_at": t(-3600)})) == "completed_at"
    assert (await client.post(events, headers=api_headers(), json={
        "type": "complete", "completed_at": t(3600)})).status == 201


# --- no write stored twice (issue 12, item 1) -------------------------------------------

async def test_a_manual_event_whose_commit_answer_is_lost_is_stored_once_and_not_refused(
        make_client: Any) -> None:
    """Issue 12, item 1. The store retries a commit whose answer it lost (the row may
    have landed); without an Idempotency-Key the server keys the event before the first
    try, so the retry finds it: one note is stored and the client hears 201 with the
    version its If-Match led to, not a 409 for its own write."""
    from ingest.keys import STORE
    from tests.ingest.test_store import LosingPool

    client = await make_client(projector=True)
    inc = await outage(client)
    store = client.app[STORE]
    version = await store.stream_version(f"incident-{inc['id']}")
    before = len(await store.read_stream(f"incident-{inc['id']}"))
    lossy = LosingPool(store.pool)
    store.pool = lossy
    try:
        response = await post_event(client, inc["id"], {
            "type": "note", "at": t(420), "text": "Rolled back to 9a0be77"}, version=version)
    finally:
        store.pool = lossy._pool
    assert lossy.to_lose == 0, "the commit's answer was lost once"
    assert response.status == 201, await response.text()
    answer = await response.json()
    assert (answer["version"], answer["duplicate"]) == (version + 1, False)
    notes = (await store.read_stream(f"incident-{inc['id']}"))[before:]
    assert [e.data.get("text") for e in notes] == ["Rolled back to 9a0be77"]


async def test_a_declaration_retried_with_its_idempotency_key_is_one_incident(
        make_client: Any) -> None:
    """Issue 12, item 1 (and the Idempotency-Key contract in /openapi.json: "a retry
    answers as the first"): a declaration names no incident yet, so its key must find
    the first declaration, not open a second incident."""
    client = await make_client()
    headers = {**api_headers(), "Idempotency-Key": "declare-7f3a"}
    body = {"title": "Checkout errors", "service": "checkout", "started_at": t(0)}
    first = await client.post("/v1/incidents", json=body, headers=headers)
    again = await client.post("/v1/incidents", json=body, headers=headers)
    assert first.status == 201, await first.text()
    assert again.status == 201, await again.text()
    one, two = await first.json(), await again.json()
    assert two["incident"] == one["incident"]
    assert two["event"] == one["event"]
    assert (one["duplicate"], two["duplicate"]) == (False, True)
