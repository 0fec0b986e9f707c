"""A delivery in, an incident out: the whole path through the running server."""

from __future__ import annotations

from typing import Any

from hindsight.app import PROJECTOR
from tests.fixtures import load_fixture
from tests.helpers import api_headers, signed_headers


async def test_a_firing_alert_becomes_an_open_incident_with_a_timeline(make_client: Any) -> None:
    client = await make_client(projector=True)
    fixture = load_fixture("alertmanager", "firing")
    response = await client.post("/v1/webhooks/alertmanager", data=fixture.body,
                                 headers=signed_headers("alertmanager", fixture.body,
                                                        fixture.headers))
    delivery = (await response.json())["delivery"]
    assert await client.app[PROJECTOR].wait_for(delivery)
    listing = await (await client.get("/v1/incidents", headers=api_headers())).json()
    [incident] = listing["incidents"]
    assert incident["status"] == "open"
    detail = await (await client.get(f"/v1/incidents/{incident['id']}",
                                     headers=api_headers())).json()
    assert detail["timeline"]
    draft = await client.get(f"/v1/incidents/{incident['id']}/postmortem", headers=api_headers())
    assert draft.status == 200
    assert "Timeline" in await draft.text()
    log = await (await client.get("/v1/deliveries", headers=api_headers())).json()
    assert log["deliveries"][0]["outcome"] == "understood"
