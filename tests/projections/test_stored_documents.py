"""Documents served as stored (issue 11, item 5): GET /v1/incidents/{id} and the
postmortem draft read the stored document once per stored version, not through the
dataclasses per request, and answer exactly what the codec's round trip answered.

What must hold (API.md: the incident's JSON, in its key order; TIMELINE.md, "The
postmortem draft": the same inputs give the same bytes, the draft date is an input):
- ``codec.stored_to_json`` gives ``incident_to_json(incident_from_json(doc))`` with the
  same keys, order and values, whatever key order the store kept (PostgreSQL's jsonb
  keeps its own: "jsonb does not preserve ... the order of object keys", PostgreSQL
  manual, 8.14 JSON Types), and fills fields a document written before them lacks;
- a kept answer never outlives the stored row it came from, and a kept draft never
  outlives any of its inputs (action items, draft date, the status page's services).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from projections.engine.codec import (
    READ_DOCUMENT,
    incident_from_json,
    incident_to_json,
    stored_to_json,
)
from projections.engine.model import Incident, TimelineEntry
from tests.api.test_postmortem import SERVICES, draft, missed_cron_run, post
from tests.helpers import api_headers

T0 = datetime(2025, 3, 14, 9, 58, 12, 500000, tzinfo=UTC)


def _jsonb_order(value: Any) -> Any:
    """Object keys as jsonb stores them: shorter keys first, then bytewise (PostgreSQL's
    ``compareJsonbScalarValue`` on keys, src/backend/utils/adt/jsonb_util.c)."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return {k: _jsonb_order(value[k]) for k in keys}
    if isinstance(value, list):
        return [_jsonb_order(v) for v in value]
    return value


def _incidents() -> list[Incident]:
    entries = (
        TimelineEntry(at=T0, received_at=T0 + timedelta(seconds=3), position=7,
                      marker="started", source="alertmanager", kind="alert",
                      subject="HighErrorRate", state="failing", text="error rate 12%",
                      severity="P2", repeats=4, last_repeat_at=T0 + timedelta(minutes=4),
                      links=(("https://grafana.example.com/d/x", "Dashboard"),
                             ("https://runbooks.example.com/errors", "")),
                      attributes=(("environment", "production"), ("ref", "4f2c9e1"),
                                  ("zone", "eu-west-1a")),
                      name="HighErrorRate"),
        TimelineEntry(at=T0 + timedelta(minutes=1), received_at=T0 + timedelta(minutes=1),
                      position=9, marker=None, source="github", kind="deploy",
                      subject="acme/checkout-service", state="failing", text="deploy failed",
                      action="deployment", candidate_factor=True),
    )
    full = Incident(
        id="inc_0123456789abcdef", title="Checkout errors", service="checkout",
        severity="P2", status="resolved", started_at=T0,
        detected_at=T0 + timedelta(seconds=3), acknowledged_at=None,
        resolved_at=T0 + timedelta(minutes=50), detection_latency_seconds=3.0,
        duration_seconds=3000.0, detected_by="monitor", detection_verdict="ok", version=2,
        first_detector="HighErrorRate", public=True, marked_public=False,
        subjects=("HighErrorRate", "acme/checkout-service"), sources=("alertmanager",),
        kinds=("alert", "deploy"), signal_count=6, timeline=entries)
    bare = Incident(
        id="inc_fedcba9876543210", title="Declared by hand", service="payments",
        severity="P3", status="open", started_at=T0, detected_at=None,
        acknowledged_at=None, resolved_at=None, detection_latency_seconds=None,
        duration_seconds=None, detected_by="human", detection_verdict="critical", version=0)
    return [full, bare]


@pytest.mark.parametrize("incident", _incidents(), ids=lambda i: i.id)
def test_the_stored_document_answers_as_the_round_trip_did(incident: Incident) -> None:
    written = incident_to_json(incident)
    stored = orjson.loads(orjson.dumps(_jsonb_order(written)))
    assert list(stored) != list(written)  # the store's order is not the API's
    answer = orjson.dumps(stored_to_json(stored))
    assert answer == orjson.dumps(incident_to_json(incident_from_json(stored)))
    assert answer == orjson.dumps(written)
    assert incident_from_json(stored_to_json(stored)) == incident


def test_a_document_written_before_a_field_existed_gets_its_default() -> None:
    incident = _incidents()[0]
    stored = _jsonb_order(incident_to_json(incident))
    del stored["marked_public"], stored["kinds"]
    for entry in stored["timeline"]:
        del entry["name"]
    for link in stored["timeline"][0]["links"]:
        if not link["title"]:
            del link["title"]  # a link stored without its title reads as ""
    answer = orjson.dumps(stored_to_json(stored))
    assert answer == orjson.dumps(incident_to_json(incident_from_json(stored)))
    assert stored_to_json(stored)["marked_public"] is None
    assert stored_to_json(stored)["kinds"] == []


async def _get(client: Any, path: str) -> bytes:
    response = await client.get(path, headers=api_headers())
    assert response.status == 200, await response.text()
    return bytes(await response.read())


async def _stored_doc(client: Any, incident: str) -> tuple[str, str]:
    """The incident's row document (no timeline) and its timeline's rows, as stored."""
    from ingest.keys import POOL

    async with client.app[POOL].acquire() as conn:
        row = await conn.fetchrow(READ_DOCUMENT, incident)
    return row["doc"], row["timeline"]


async def _rewrite(client: Any, incident: str, sql: str) -> None:
    """What a rebuild or the projector does: a new version of the row."""
    from ingest.keys import POOL

    async with client.app[POOL].acquire() as conn:
        await conn.execute(f"UPDATE incidents SET doc = {sql} WHERE id = $1", incident)


async def test_answers_follow_every_new_version_of_the_stored_row(make_client: Any) -> None:
    client = await make_client(projector=True, services=SERVICES)
    incident = await missed_cron_run(client)
    path = f"/v1/incidents/{incident}"
    first = await _get(client, path)
    stored, timeline = await _stored_doc(client, incident)
    assert first == orjson.dumps(incident_to_json(incident_from_json(
        {**orjson.loads(stored), "timeline": orjson.loads(timeline)})))
    first_md = await _get(client, path + "/postmortem")
    assert await _get(client, path) == first  # kept: the same bytes again
    assert await _get(client, path + "/postmortem") == first_md

    await _rewrite(client, incident, """jsonb_set(doc, '{title}', '"Reconciliation late"')""")
    changed = orjson.loads(await _get(client, path))
    assert changed["title"] == "Reconciliation late"
    assert list(changed) == list(orjson.loads(first))  # still the API's key order
    assert "Reconciliation late" in (await _get(client, path + "/postmortem")).decode()

    await _rewrite(client, incident, "doc")  # a new row version, the same content
    assert orjson.loads(await _get(client, path))["title"] == "Reconciliation late"

    from ingest.keys import POOL

    async with client.app[POOL].acquire() as conn:  # back to the first document
        await conn.execute("UPDATE incidents SET doc = $2::jsonb WHERE id = $1",
                           incident, stored)
    assert await _get(client, path) == first
    assert await _get(client, path + "/postmortem") == first_md

    async with client.app[POOL].acquire() as conn:
        await conn.execute("DELETE FROM incidents WHERE id = $1", incident)
    gone = await client.get(path, headers=api_headers())
    assert gone.status == 404


async def test_a_kept_draft_follows_its_items_date_and_status_page(make_client: Any) -> None:
    client = await make_client(projector=True, services=SERVICES)
    incident = await missed_cron_run(client)
    before = await (await draft(client, incident)).text()
    before_json = await (await draft(client, incident, "?format=json")).json()
    assert before_json["draft_date"] != "2031-01-02"

    dated = await (await draft(client, incident, "?format=json&draft_date=2031-01-02")).json()
    assert dated["draft_date"] == "2031-01-02"
    assert (await (await draft(client, incident, "?format=json")).json()) == before_json

    item = "Alert when the reconciliation job has not pinged by 02:30"
    last = await post(client, f"/v1/incidents/{incident}/action-items", {"title": item})
    from projections.runtime.projector import PROJECTOR

    assert await client.app[PROJECTOR].wait_for(last["event"])
    after = await (await draft(client, incident)).text()
    assert item not in before
    assert item in after

    # Another server on the same database whose status page lists payments: the draft
    # says the public summary is due there (public.is_published), not here.
    listed = await make_client(projector=False, services=SERVICES,
                               status={"public_services": {"payments": "Payments"}})
    here = await (await draft(client, incident, "?format=json")).json()
    there = await (await draft(listed, incident, "?format=json")).json()

    def due(body: dict[str, Any]) -> bool:
        [section] = [s for s in body["sections"] if s["id"] == "public_summary"]
        return bool(section["published"])

    assert not due(here)
    assert due(there)
