"""Pingdom state change webhooks -> signals, and its token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from ingest.delivery import Delivery, MappingError
from ingest.signals import Signal
from ingest.sources import pingdom
from tests.fixtures import fixture_names, load_fixture
from tests.helpers import TOKENS

SOURCE = "pingdom"
RECEIVED = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def parse(name: str) -> list[Signal]:
    return pingdom.parse(load_fixture(SOURCE, name).delivery())


def sent(name: str) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(load_fixture(SOURCE, name).body)
    return body


def inline(**fields: object) -> Delivery:
    body = {**sent("http_down"), **fields}
    return Delivery(source=SOURCE, body=orjson.dumps(body), received_at=RECEIVED,
                    headers={"content-type": "application/json"})


# pingdom.com/resources/webhooks: uptime checks change UP <-> DOWN, transaction checks
# SUCCESS <-> FAILING.
STATES = {"DOWN": "failing", "FAILING": "failing", "UP": "ok", "SUCCESS": "ok"}


@pytest.mark.parametrize("name", fixture_names(SOURCE))
def test_every_pingdom_fixture_is_what_its_current_state_says(name: str) -> None:
    body = sent(name)
    (signal,) = parse(name)

    assert (signal.kind, signal.state) == ("uptime", STATES[body["current_state"]])
    assert signal.subject == body["check_name"]
    # TIMELINE.md: the tool's own time of the state change, not our receipt.
    assert signal.occurred_at == datetime.fromtimestamp(body["state_changed_timestamp"], UTC)
    assert signal.attribute_map["check_id"] == str(body["check_id"])


def test_a_down_http_check_is_failing_at_its_state_change() -> None:
    (signal,) = parse("http_down")

    assert signal.occurred_at == datetime(2025, 3, 14, 10, 3, tzinfo=UTC)
    assert signal.notified_at == load_fixture(SOURCE, "http_down").received_at
    assert signal.summary == "HTTP Error 503"
    assert signal.links[0].url == "https://www.example-shop.com/health"
    assert (signal.service, signal.severity) == ("storefront", "P1")  # from its tags
    assert signal.attribute_map["first_probe_location"] == "Frankfurt, Germany"
    assert signal.attribute_map["second_probe_location"] == "Zurich, Switzerland"
    assert signal.attribute_map["previous_state"] == "UP"


def test_a_failing_transaction_names_the_failed_step() -> None:
    (signal,) = parse("transaction_failing")

    assert (signal.subject, signal.state) == ("Checkout flow", "failing")
    assert signal.summary == "Step 4: element #pay-button not found"
    assert signal.severity == "P2"  # importance_level HIGH, no severity tag
    assert signal.attribute_map["check_type"] == "TRANSACTION"


def test_the_utc_time_is_read_when_the_timestamp_is_missing() -> None:
    """``state_changed_utc_time`` is UTC without a zone (the documented example)."""
    (signal,) = pingdom.parse(inline(state_changed_timestamp=None,
                                     state_changed_utc_time="2025-03-14T10:03:00"))

    assert (signal.occurred_at, signal.time_source) == (
        datetime(2025, 3, 14, 10, 3, tzinfo=UTC), "source")


def test_a_change_without_any_time_is_dated_by_its_receipt() -> None:
    (signal,) = pingdom.parse(inline(state_changed_timestamp=None, state_changed_utc_time=None))

    assert (signal.occurred_at, signal.time_source) == (RECEIVED, "receipt")


@pytest.mark.parametrize("state", ["UNCONFIRMED_DOWN", "unknown", "PAUSED"])
def test_states_that_are_not_up_or_down_change_nothing(state: str) -> None:
    assert pingdom.parse(inline(current_state=state)) == []


def test_a_body_without_a_check_is_a_test() -> None:
    assert pingdom.parse(inline(check_id=None)) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"current_state": None}, "current_state: missing"),
        ({"current_state": "SIDEWAYS"}, "current_state: expected UP, DOWN"),
        ({"check_name": ""}, "check_name: missing"),
        ({"state_changed_timestamp": "soon"}, "not a Unix time"),
    ],
)
def test_a_body_it_cannot_map_names_the_first_problem(fields: dict[str, object],
                                                       message: str) -> None:
    with pytest.raises(MappingError, match=message):
        pingdom.parse(inline(**fields))


# --- The token, through the real server ----------------------------------------------
# Pingdom's webhook integration is a URL only (no custom headers): the token goes in it.


async def test_the_token_in_the_url_is_accepted(client: Any) -> None:
    fixture = load_fixture(SOURCE, "http_down")

    response = await client.post(f"/v1/webhooks/pingdom?token={TOKENS[SOURCE]}",
                                 data=fixture.body, headers=fixture.headers)

    assert response.status == 202, await response.text()


async def test_a_missing_or_wrong_token_is_refused(client: Any) -> None:
    fixture = load_fixture(SOURCE, "http_down")

    for url in ("/v1/webhooks/pingdom", "/v1/webhooks/pingdom?token=guess",
                f"/v1/webhooks/pingdom?token={TOKENS[SOURCE]}x"):
        response = await client.post(url, data=fixture.body, headers=fixture.headers)
        assert response.status == 401, url
