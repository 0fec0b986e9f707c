"""Better Stack Uptime incident webhook -> signals."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.delivery import Delivery, MappingError
from ingest.signals import Signal
from ingest.sources import betterstack
from tests.fixtures import fixture_names, load_fixture
from tests.sources.folding import fold

SOURCE = "betterstack"
RECEIVED = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def parse(name: str) -> list[Signal]:
    return betterstack.parse(load_fixture(SOURCE, name).delivery())


def inline(body: object) -> Delivery:
    return Delivery(source=SOURCE, body=orjson.dumps(body), received_at=RECEIVED)


@pytest.mark.parametrize("name", fixture_names(SOURCE))
def test_every_betterstack_fixture_is_one_signal_of_its_incident(name: str) -> None:
    """Better Stack's incident webhook is about one incident (betterstack.com/docs/
    uptime/webhooks/): one signal, dated by the payload, never by our clock."""
    fixture = load_fixture(SOURCE, name)
    (signal,) = parse(name)

    assert signal.action in ("triggered", "acknowledged", "resolved")
    assert signal.time_source == "source"
    assert signal.notified_at == fixture.received_at
    assert signal.attribute_map["incident_id"] == orjson.loads(fixture.body)["data"]["id"]


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


def test_an_acknowledgement_is_dated_at_the_incidents_acknowledged_at() -> None:
    """Issue 10 (3): the acknowledgement was dated at the incident's started_at. The
    payload's ``acknowledged_at`` (incidents-api-response-params) is the moment."""
    (signal,) = parse("acknowledged")

    assert (signal.state, signal.action) == ("failing", "acknowledged")
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 9, 38, tzinfo=UTC)
    assert signal.attribute_map["acknowledged_at"] == "2025-03-14T10:09:38Z"
    assert signal.attribute_map["incident_started_at"] == "2025-03-14T10:04:11Z"


def test_the_incidents_acknowledged_moment_is_when_it_was_acknowledged() -> None:
    """TIMELINE.md, the four moments: ``acknowledged_at`` comes from the on-call tool;
    the incident still started at the monitor's failure."""
    engine = fold((SOURCE, "started"), (SOURCE, "acknowledged"), (SOURCE, "resolved"))

    (incident,) = engine.incidents()
    assert incident.started_at == datetime(2025, 3, 14, 10, 4, 11, tzinfo=UTC)
    assert incident.acknowledged_at == datetime(2025, 3, 14, 10, 9, 38, tzinfo=UTC)
    assert incident.resolved_at == datetime(2025, 3, 14, 10, 27, 1, tzinfo=UTC)


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


def ssl_warning_resolved() -> Delivery:
    """The SSL expiration incident of ``ssl_expiring``, resolved once the certificate
    was renewed: the same incident body with ``resolved_at`` and status Resolved."""
    body = orjson.loads(load_fixture(SOURCE, "ssl_expiring").body)
    body["data"]["attributes"].update(resolved_at="2025-03-15T08:30:00.000Z",
                                      resolved_by="Automatically", status="Resolved")
    return Delivery(source=SOURCE, body=orjson.dumps(body),
                    received_at=datetime(2025, 3, 15, 8, 30, 2, tzinfo=UTC))


def test_a_resolved_ssl_warning_is_the_certificates_recovery_without_a_start() -> None:
    """Issue 10 (3): a resolved SSL-expiry warning was taken for a failing period seen
    after the fact. TIMELINE.md rule 6: a warning opens no incident; rule 4: only a
    failure's recovery carries its start."""
    (signal,) = betterstack.parse(ssl_warning_resolved())

    assert (signal.kind, signal.subject, signal.state) == ("ssl", "portal.example.com", "ok")
    assert signal.action == "resolved"
    assert signal.occurred_at == datetime(2025, 3, 15, 8, 30, tzinfo=UTC)
    assert signal.started_at is None


def test_a_resolved_ssl_warning_opens_no_incident_and_ends_the_risk() -> None:
    """TIMELINE.md rule 6: the warning is a risk of the service, never an incident; once
    resolved, the risk is gone."""
    warned = fold((SOURCE, "ssl_expiring"))
    resolved = fold((SOURCE, "ssl_expiring"), ssl_warning_resolved())

    assert [r.subject for r in warned.risks("portal.example.com")] == ["portal.example.com"]
    assert resolved.incidents() == []
    assert resolved.risks("portal.example.com") == ()


def test_a_resolved_expired_certificate_is_a_failing_period_with_its_start() -> None:
    """An expired certificate is failing (rule 6), so its resolution is a failing period
    seen after the fact (rule 4): both ends known."""
    body = {"data": {"id": "2", "type": "incident", "attributes": {
        "name": "Portal", "url": "https://portal.example.com", "cause": "SSL certificate expired",
        "started_at": "2025-03-14T06:00:18Z", "resolved_at": "2025-03-14T07:12:00Z",
        "status": "Resolved"}}}

    (signal,) = betterstack.parse(inline(body))

    assert (signal.kind, signal.state) == ("ssl", "ok")
    assert signal.started_at == datetime(2025, 3, 14, 6, 0, 18, tzinfo=UTC)
    assert signal.occurred_at == datetime(2025, 3, 14, 7, 12, tzinfo=UTC)


def test_an_acknowledged_ssl_warning_acknowledges_no_outage() -> None:
    """TIMELINE.md rule 6: a warning opens no incident, so its acknowledgement is no
    incident's ``acknowledged_at`` (the simulation's seed 20250554: it acknowledged the
    service's outage)."""
    body = orjson.loads(load_fixture(SOURCE, "ssl_expiring").body)
    body["data"]["attributes"].update(acknowledged_at="2025-03-14T10:09:00.000Z",
                                      acknowledged_by="Jordan Lee", status="Acknowledged")
    ack = Delivery(source=SOURCE, body=orjson.dumps(body),
                   received_at=datetime(2025, 3, 14, 10, 9, 2, tzinfo=UTC))
    outage = inline({"data": {"id": "3", "type": "incident", "attributes": {
        "name": "portal.example.com", "cause": "Status 503",
        "started_at": "2025-03-14T10:05:00Z", "status": "Started"}}})

    (signal,) = betterstack.parse(ack)
    (incident,) = fold(outage, ack).incidents()

    assert (signal.state, signal.action) == ("warning", "triggered")
    assert incident.acknowledged_at is None


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
