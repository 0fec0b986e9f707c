"""U+0000 in a delivery or a manual event. PostgreSQL's text and jsonb cannot hold it,
yet an authentic delivery is stored before it is answered, whatever it says
(ARCHITECTURE.md, "Deliveries are the events": an adapter that fails still leaves the raw
delivery stored), and bad input to the API gets a clear error, never a 500 (API.md)."""

from __future__ import annotations

from typing import Any

import orjson

from tests.helpers import api_headers, signed_headers


def _native(**fields: Any) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps({"kind": "uptime", "state": "failing", "service": "checkout",
                         "occurred_at": "2025-03-14T09:00:00Z", **fields})
    return body, {**signed_headers("native", body), "Content-Type": "application/json"}


async def test_a_delivery_whose_text_holds_u0000_is_stored_verbatim_and_folded(
        client: Any) -> None:
    body, headers = _native(subject="disk\u0000check", summary="nul \u0000 inside")
    response = await client.post("/v1/webhooks/native", data=body, headers=headers)
    answer = await response.json()
    assert response.status == 202, answer
    [signal] = answer["signals"]
    assert signal["subject"] == "disk\ufffdcheck"  # what we read; the body keeps U+0000
    stored = await (await client.get(f"/v1/deliveries/{answer['delivery']}",
                                     headers=api_headers())).json()
    assert stored["body"].encode() == body
    assert stored["outcome"] == "understood"


async def test_a_manual_note_holding_u0000_is_refused_with_422_naming_the_field(
        client: Any) -> None:
    body, headers = _native(subject="api")
    assert (await client.post("/v1/webhooks/native", data=body, headers=headers)).status == 202
    declared = await client.post("/v1/incidents", headers=api_headers(), json={
        "service": "checkout", "title": "Checkout \u0000 down",
        "started_at": "2025-03-14T09:00:00Z"})
    assert declared.status == 422
    assert "title" in (await declared.json())["error"]
