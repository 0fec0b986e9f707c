"""Better Stack Uptime incident webhook -> signals."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.delivery import Delivery, MappingError
from ingest.sources import betterstack
from tests.fixtures import fixture_names, load_fixture

SOURCE = "betterstack"
RECEIVED = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def parse(name: str) -> list:
    return betterstack.parse(load_fixture(SOURCE, name).delivery())


def inline(body: object) -> Delivery:
    return Delivery(source=SOURCE, body=orjson.dumps(body), received_at=RECEIVED)


@pytest.mark.parametrize("name", fixture_names(SOURCE))
def test_every_betterstack_fixture_parses(name: str) -> None:
    parse(name)


def test_a_started_incident_is_failing_at_its_start() -> None:
    (signal,) = parse("started")

    assert (signal.kind, signal.subject, signal.state) == ("uptime", "Orders API", "failing")
    assert signal.action == "triggered"
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 4, 11, tzinfo=UTC)
    assert signal.notified_at == datetime(2025, 3, 14, 10, 4, 13, 400000, tzinfo=UTC)
    assert signal.summary == "Status 502"
    assert signal.links[0].url == "https://api.example.com/orders/health"
    assert signal.attribute_map == {
        "incident_id": "512094366", "monitor_id": "2231870", "cause": "Status 502",
    }


def test_an_acknowledged_incident_repeats_the_failure_and_keeps_the_ack_time() -> None:
    (signal,) = parse("acknowledged")

    assert (signal.state, signal.action) == ("failing", "acknowledged")
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 4, 11, tzinfo=UTC)
    assert signal.attribute_map["acknowledged_at"] == "2025-03-14T10:09:38Z"


def test_the_person_who_acknowledged_is_never_copied() -> None:
    (signal,) = parse("acknowledged")

    assert "Jordan" not in str(signal.to_json())


def test_a_resolved_incident_is_ok_at_its_resolution_with_its_start() -> None:
    (signal,) = parse("resolved")

    assert (signal.state, signal.action, signal.subject) == ("ok", "resolved", "Orders API")
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 27, 1, tzinfo=UTC)
    assert signal.started_at == datetime(2025, 3, 14, 10, 4, 11, tzinfo=UTC)


def test_an_ssl_expiration_incident_is_a_warning_for_the_host() -> None:
    (signal,) = parse("ssl_expiring")

    assert (signal.kind, signal.state, signal.subject) == ("ssl", "warning", "portal.example.com")
    assert signal.attribute_map["days_left"] == "7"
    assert signal.attribute_map["expires_at"] == "2025-03-21T06:00:18Z"
    assert signal.attribute_map["monitor"] == "Customer portal"


def test_an_expired_certificate_incident_is_failing() -> None:
    body = {"data": {"id": "1", "type": "incident", "attributes": {
        "name": "Portal", "url": "https://portal.example.com", "cause": "SSL certificate expired",
        "started_at": "2025-03-14T06:00:18Z", "status": "Started"}}}

    (signal,) = betterstack.parse(inline(body))

    assert (signal.kind, signal.state, signal.subject) == ("ssl", "failing", "portal.example.com")


def test_without_a_status_the_times_tell_what_happened() -> None:
    body = {"data": {"id": "1", "attributes": {
        "name": "API",
        "started_at": "2025-03-14T06:00:00Z",
        "resolved_at": "2025-03-14T06:10:00Z",
    }}}

    (signal,) = betterstack.parse(inline(body))

    assert (signal.state, signal.action) == ("ok", "resolved")


def test_a_monitor_webhook_yields_no_signals() -> None:
    body = {"data": {"id": "7", "type": "monitor", "attributes": {}}}

    assert betterstack.parse(inline(body)) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "data: missing"),
        ({"data": {"type": "incident"}}, "data.attributes: missing"),
        (
            {"data": {"attributes": {"started_at": "2025-03-14T06:00:00Z"}}},
            "data.attributes.name: missing",
        ),
        ({"data": {"attributes": {"name": "API"}}}, "data.attributes.started_at: missing"),
    ],
)
def test_a_body_it_cannot_map_names_the_first_problem(body: object, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        betterstack.parse(inline(body))
