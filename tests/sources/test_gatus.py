"""Gatus custom alerting provider -> signals, and its token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from ingest.delivery import Delivery, MappingError
from ingest.signals import Signal
from ingest.sources import gatus
from tests.fixtures import fixture_names, load_fixture
from tests.helpers import TOKENS

SOURCE = "gatus"
RECEIVED = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def parse(name: str) -> list[Signal]:
    return gatus.parse(load_fixture(SOURCE, name).delivery())


def sent(name: str) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(load_fixture(SOURCE, name).body)
    return body


def inline(**fields: object) -> Delivery:
    body = {**sent("triggered"), **fields}
    return Delivery(source=SOURCE, body=orjson.dumps(body), received_at=RECEIVED,
                    headers={"content-type": "application/json"})


@pytest.mark.parametrize("name", fixture_names(SOURCE))
def test_every_gatus_fixture_is_dated_by_its_receipt(name: str) -> None:
    """TIMELINE.md: a payload with no event time falls back to ``received_at`` and says
    so. Gatus' placeholders hold no time (custom.go buildHTTPRequest), so every signal is
    receipt-dated."""
    fixture = load_fixture(SOURCE, name)
    signals = parse(name)

    if sent(name)["endpoint_name"] == "[ENDPOINT_NAME]":
        assert signals == []
        return
    (signal,) = signals
    assert (signal.occurred_at, signal.notified_at) == (fixture.received_at,) * 2
    assert signal.time_source == "receipt"


def test_a_triggered_alert_is_failing_for_its_group_and_name() -> None:
    (signal,) = parse("triggered")

    assert (signal.kind, signal.subject, signal.state) == ("uptime", "core/api-health",
                                                           "failing")
    # [RESULT_ERRORS] arrives with its quotes escaped in the JSON text: read back whole.
    assert signal.summary.startswith('Get "https://api.example-shop.com/health": context')
    assert signal.links[0].url == "https://api.example-shop.com/health"
    assert signal.attribute_map["endpoint_group"] == "core"


def test_a_resolved_alert_recovers_the_same_subject() -> None:
    (failing,) = parse("triggered")
    (resolved,) = parse("resolved")

    assert resolved.state == "ok"
    assert resolved.subject == failing.subject


def test_the_readmes_placeholder_override_words_are_understood() -> None:
    """README "Configuring custom alerts": ``placeholders: ALERT_TRIGGERED_OR_RESOLVED:
    {TRIGGERED: partial_outage, RESOLVED: operational}``."""
    (signal,) = parse("placeholder_override")

    assert (signal.subject, signal.state) == ("website", "failing")  # no group
    (back,) = gatus.parse(inline(status="operational"))
    assert back.state == "ok"


def test_a_body_sent_without_content_type_is_read() -> None:
    """Gatus sets only the configured headers: without a Content-Type one, none."""
    fixture = load_fixture(SOURCE, "triggered")
    bare = Delivery(source=SOURCE, body=fixture.body, received_at=RECEIVED, headers={})

    (signal,) = gatus.parse(bare)

    assert signal.state == "failing"


def test_the_template_posted_by_hand_is_a_test() -> None:
    assert parse("unsubstituted") == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"status": ""}, "status: missing"),
        ({"status": "[ALERT_TRIGGERED_OR_RESOLVED]"}, "status: expected TRIGGERED or RESOLVED"),
        ({"status": "maybe"}, "status: expected TRIGGERED or RESOLVED"),
        ({"endpoint_group": ["core"]}, "endpoint_group: expected a string or a number"),
    ],
)
def test_a_body_it_cannot_map_names_the_first_problem(fields: dict[str, object],
                                                       message: str) -> None:
    with pytest.raises(MappingError, match=message):
        gatus.parse(inline(**fields))


# --- The token, through the real server ----------------------------------------------
# alerting.custom.headers carries "Authorization: Bearer <token>".


async def test_a_bearer_token_in_the_configured_headers_is_accepted(client: Any) -> None:
    fixture = load_fixture(SOURCE, "triggered")
    headers = {**fixture.headers, "Authorization": f"Bearer {TOKENS[SOURCE]}"}

    response = await client.post("/v1/webhooks/gatus", data=fixture.body, headers=headers)

    assert response.status == 202, await response.text()


async def test_a_missing_or_wrong_token_is_refused(client: Any) -> None:
    fixture = load_fixture(SOURCE, "triggered")

    for extra in ({}, {"Authorization": "Bearer guess"},
                  {"Authorization": f"Bearer {TOKENS['pingdom']}"}):
        response = await client.post("/v1/webhooks/gatus", data=fixture.body,
                                     headers={**fixture.headers, **extra})
        assert response.status == 401, extra
