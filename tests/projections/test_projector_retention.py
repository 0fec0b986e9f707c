"""Retention through the real server and projector (TIMELINE.md rule 11): whatever the
projector forgets to save memory, the read models equal a fold that forgot nothing.

With ``retention_seconds=1`` every resolved incident leaves the engine's memory (for its
archive) as soon as the service's data time moves on; a manual event or a late signal
about it must still reach it, and its id is never given to another incident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers import api_headers
from tests.scenarios.harness import import_deliveries, incident, incidents, settle
from tests.scenarios.payloads import kuma, rfc3339

# Engineers' events are recorded at the server's clock: the outage was earlier today.
BASE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)


def s(offset: float) -> datetime:
    return BASE + timedelta(seconds=offset)


async def forgotten_outage(client: Any) -> dict[str, Any]:
    """Checkout API down at BASE and up 20 min later; then, an hour later, another
    monitor of the service fails and recovers: the first incident is past retention."""
    await import_deliveries(client, [
        kuma(False, s(0), s(0.5)),
        kuma(True, s(1200), s(1200.5)),
        kuma(False, s(3600), s(3600.5), monitor="Search API", monitor_id=13),
        kuma(True, s(3700), s(3700.5), monitor="Search API", monitor_id=13),
    ])
    found = await incidents(client)
    [first] = [i for i in found if i["started_at"] == rfc3339(s(0))]
    return first


async def test_a_manual_event_about_a_forgotten_incident_reaches_it(make_client: Any) -> None:
    """TIMELINE.md rule 11: a manual event about an old incident reaches that incident."""
    client = await make_client(projector=True, retention_seconds=1)
    first = await forgotten_outage(client)
    response = await client.post(
        f"/v1/incidents/{first['id']}/events", headers=api_headers(),
        json={"type": "note", "at": rfc3339(s(600)), "text": "Rolled back to 9a0be77"})
    assert response.status == 201
    await settle(client)
    doc = await incident(client, first["id"])
    assert [(e["at"], e["text"]) for e in doc["timeline"] if e["marker"] == "note"] == [
        (rfc3339(s(600)), "Rolled back to 9a0be77")]
    assert doc["version"] == 1
    response = await client.post(
        f"/v1/incidents/{first['id']}/events", headers=api_headers(),
        json={"type": "resolve", "resolved_at": rfc3339(s(1000)), "text": "mitigated"})
    assert response.status == 201
    await settle(client)
    doc = await incident(client, first["id"])
    assert (doc["status"], doc["resolved_at"], doc["version"]) == (
        "resolved", rfc3339(s(1000)), 2)


async def test_a_late_failure_reaches_a_forgotten_incident_and_never_takes_its_id(
    make_client: Any
) -> None:
    """TIMELINE.md rule 11: a late signal about an old incident reaches that incident,
    and an incident id is never reused: the same failure reported again (a monitor's
    state change re-sent hours later) joins the incident it opened, whose row keeps its
    moments and its engineer's note."""
    client = await make_client(projector=True, retention_seconds=1)
    first = await forgotten_outage(client)
    await client.post(f"/v1/incidents/{first['id']}/events", headers=api_headers(),
                      json={"type": "note", "at": rfc3339(s(600)), "text": "Rolled back"})
    await settle(client)
    # The same down heartbeat, reported again much later (another tag value: new bytes).
    await import_deliveries(client, [kuma(False, s(0), s(7200), severity="warning")])
    doc = await incident(client, first["id"])
    assert (doc["started_at"], doc["resolved_at"], doc["status"]) == (
        rfc3339(s(0)), rfc3339(s(1200)), "resolved")
    assert doc["signal_count"] == 3
    assert [e["text"] for e in doc["timeline"] if e["marker"] == "note"] == ["Rolled back"]
    assert len(await incidents(client)) == 2
