"""PagerDuty V3: an incident's triggered, acknowledged and resolved events."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.delivery import Delivery, MappingError
from ingest.signals import Link, Signal
from ingest.sources import pagerduty
from tests.fixtures import fixture_names, load_fixture

PEOPLE = ("Jordan Reyes", "Sam Okafor", "Jordan")


def parse(name: str) -> list[Signal]:
    return pagerduty.parse(load_fixture("pagerduty", name).delivery())


def with_incident(name: str, **change: object) -> list[Signal]:
    fixture = load_fixture("pagerduty", name)
    body = orjson.loads(fixture.body)
    body["event"]["data"] |= change
    delivery = fixture.delivery()
    return pagerduty.parse(
        Delivery(
            source="pagerduty",
            body=orjson.dumps(body),
            received_at=delivery.received_at,
            headers=delivery.headers,
        )
    )


def test_a_triggered_incident_is_a_failing_alert_of_its_service() -> None:
    [signal] = parse("incident_triggered")
    assert signal.source == "pagerduty"
    assert signal.kind == "alert"
    assert signal.subject == "Checkout API"
    assert signal.service == "Checkout API"
    assert (signal.state, signal.action) == ("failing", "triggered")
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 4, 52, 614000, tzinfo=UTC)
    assert signal.notified_at == datetime(2025, 3, 14, 10, 4, 54, 871000, tzinfo=UTC)
    assert signal.severity == "P1"
    assert signal.summary == "PagerDuty incident #4187 triggered: Checkout API error rate above 5%"
    assert signal.links == (
        Link("https://acme.pagerduty.com/incidents/Q2QQ5UMXK7HJ3D", "PagerDuty incident #4187"),
    )
    assert signal.attribute_map == {
        "incident_id": "Q2QQ5UMXK7HJ3D",
        "incident_number": "4187",
        "event_type": "incident.triggered",
        "event_id": "01DEN9Q8XQJ0D1V1Z7K5F3H2TA",
        "urgency": "high",
        "priority": "P1",
    }


def test_an_acknowledgement_is_info_with_the_acknowledged_action() -> None:
    [signal] = parse("incident_acknowledged")
    assert (signal.subject, signal.state, signal.action) == ("Checkout API", "info", "acknowledged")
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 7, 30, 118000, tzinfo=UTC)


def test_a_resolution_is_ok_for_the_same_subject() -> None:
    [signal] = parse("incident_resolved")
    assert (signal.subject, signal.state, signal.action) == ("Checkout API", "ok", "resolved")
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 35, 10, 950000, tzinfo=UTC)


@pytest.mark.parametrize("name", ["ping", "incident_annotated"])
def test_the_test_ping_and_notes_map_to_no_signal(name: str) -> None:
    assert parse(name) == []


def test_without_a_priority_a_high_urgency_is_p2() -> None:
    [signal] = with_incident("incident_triggered", priority=None)
    assert signal.severity == "P2"
    [low] = with_incident("incident_triggered", priority=None, urgency="low")
    assert low.severity == "P4"


def test_a_p5_priority_is_the_lowest_severity() -> None:
    fixture = load_fixture("pagerduty", "incident_triggered")
    priority = orjson.loads(fixture.body)["event"]["data"]["priority"] | {"summary": "P5"}
    [signal] = with_incident("incident_triggered", priority=priority)
    assert signal.severity == "P4"


def test_a_priority_change_repeats_the_failure_unless_the_incident_is_resolved() -> None:
    fixture = load_fixture("pagerduty", "incident_triggered")
    body = orjson.loads(fixture.body)
    body["event"]["event_type"] = "incident.priority_updated"
    delivery = Delivery(
        source="pagerduty", body=orjson.dumps(body), received_at=fixture.received_at
    )
    [signal] = pagerduty.parse(delivery)
    assert (signal.state, signal.action, signal.severity) == ("failing", "priority_updated", "P1")
    body["event"]["data"]["status"] = "resolved"
    resolved = Delivery(
        source="pagerduty", body=orjson.dumps(body), received_at=fixture.received_at
    )
    assert pagerduty.parse(resolved) == []


def test_no_person_from_agents_or_assignees_reaches_a_signal() -> None:
    for name in fixture_names("pagerduty"):
        text = orjson.dumps([s.to_json() for s in parse(name)]).decode()
        for person in PEOPLE:
            assert person not in text, (name, person)


def test_an_incident_without_a_service_names_the_field() -> None:
    with pytest.raises(MappingError, match=r"^event\.data\.service: missing$"):
        _without_service()


def _without_service() -> list[Signal]:
    fixture = load_fixture("pagerduty", "incident_triggered")
    body = orjson.loads(fixture.body)
    del body["event"]["data"]["service"]
    return pagerduty.parse(
        Delivery(source="pagerduty", body=orjson.dumps(body), received_at=fixture.received_at)
    )


def test_a_body_without_an_event_names_the_field() -> None:
    with pytest.raises(MappingError, match=r"^event: missing$"):
        pagerduty.parse(
            Delivery(
                source="pagerduty",
                body=b'{"messages": []}',
                received_at=datetime(2025, 1, 1, tzinfo=UTC),
            )
        )
