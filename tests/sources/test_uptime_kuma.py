"""Uptime Kuma webhook notification -> signals."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.delivery import BodyError, Delivery, MappingError
from ingest.signals import Signal
from ingest.sources import uptime_kuma
from tests.fixtures import fixture_names, load_fixture

SOURCE = "uptime-kuma"
RECEIVED = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def parse(name: str) -> list[Signal]:
    return uptime_kuma.parse(load_fixture(SOURCE, name).delivery())


def inline(body: object, content_type: str = "application/json") -> Delivery:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return Delivery(source=SOURCE, body=raw, received_at=RECEIVED,
                    headers={"content-type": content_type})


# What each fixture is (louislam/uptime-kuma server/notification-providers/webhook.js:
# {heartbeat, monitor, msg}; heartbeat.status 0 down, 1 up; no heartbeat for the Test
# button and for certificate-expiry notices).
EXPECTED = {
    "cert_expiry": ("ssl", "warning"),
    "down": ("uptime", "failing"),
    "down_form_data": ("uptime", "failing"),
    "up": ("uptime", "ok"),
    "test": None,
}


def test_every_fixture_is_described() -> None:
    assert sorted(EXPECTED) == fixture_names(SOURCE)


@pytest.mark.parametrize("name", fixture_names(SOURCE))
def test_every_uptime_kuma_fixture_is_what_its_heartbeat_says(name: str) -> None:
    signals = parse(name)

    expected = EXPECTED[name]
    if expected is None:
        assert signals == []
        return
    (signal,) = signals
    assert (signal.kind, signal.state) == expected
    assert signal.notified_at == load_fixture(SOURCE, name).received_at


def test_a_down_heartbeat_is_failing_at_its_utc_time() -> None:
    (signal,) = parse("down")

    assert (signal.source, signal.kind, signal.subject) == ("uptime-kuma", "uptime", "Checkout API")
    assert signal.state == "failing"
    # heartbeat.time has no zone and is UTC; localDateTime (Europe/Berlin) is ignored.
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 2, 31, 512000, tzinfo=UTC)
    assert signal.notified_at == datetime(2025, 3, 14, 10, 2, 32, 4000, tzinfo=UTC)
    assert signal.time_source == "source"
    assert signal.summary == "Request failed with status code 503"
    assert (signal.service, signal.severity) == ("checkout", "P1")
    assert signal.label_map == {"public": "", "service": "checkout", "severity": "critical"}
    assert signal.links[0].url == "https://shop.example.com/api/health"
    assert signal.attribute_map == {"monitor_id": "12", "monitor_type": "http"}


def test_an_up_heartbeat_is_ok_for_the_same_subject() -> None:
    (signal,) = parse("up")

    assert (signal.subject, signal.state) == ("Checkout API", "ok")
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 19, 31, 498000, tzinfo=UTC)


def test_a_form_data_delivery_reads_like_the_json_one() -> None:
    (form,) = parse("down_form_data")
    (json_body,) = parse("down")

    assert (form.subject, form.state, form.occurred_at) == (
        json_body.subject, json_body.state, json_body.occurred_at,
    )


def test_the_test_message_yields_no_signals() -> None:
    assert parse("test") == []


def test_a_certificate_expiry_notice_is_an_ssl_warning_for_the_host() -> None:
    (signal,) = parse("cert_expiry")

    assert (signal.kind, signal.state, signal.subject) == ("ssl", "warning", "shop.example.com")
    assert signal.time_source == "receipt"
    assert signal.occurred_at == datetime(2025, 3, 14, 6, 0, 4, 250000, tzinfo=UTC)
    assert signal.attribute_map["days_left"] == "14"
    assert signal.attribute_map["expires_at"] == "2025-03-28T06:00:04.25Z"
    assert signal.attribute_map["expires_at_estimated"] == "true"
    assert signal.attribute_map["monitor"] == "Checkout API"


@pytest.mark.parametrize("status", [2, 3])
def test_pending_and_maintenance_beats_yield_no_signals(status: int) -> None:
    body = {"heartbeat": {"status": status, "time": "2025-03-14 10:00:00.000"},
            "monitor": {"name": "API"}, "msg": ""}

    assert uptime_kuma.parse(inline(body)) == []


def test_a_custom_body_with_the_template_variable_names_is_accepted() -> None:
    body = {"heartbeatJSON": {"status": 0, "time": "2025-03-14 10:00:00.000", "msg": "timeout"},
            "monitorJSON": {"name": "API", "url": "https://"}, "msg": "down"}

    (signal,) = uptime_kuma.parse(inline(body))

    assert (signal.subject, signal.state) == ("API", "failing")
    assert signal.links == ()  # Kuma's placeholder "https://" is no link


def test_a_heartbeat_without_time_is_dated_by_its_receipt() -> None:
    body = {"heartbeat": {"status": 1}, "monitor": {"name": "API"}, "msg": "up"}

    (signal,) = uptime_kuma.parse(inline(body))

    assert (signal.occurred_at, signal.time_source) == (RECEIVED, "receipt")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"heartbeat": {"status": 0}, "monitor": None}, "monitor: expected an object"),
        (
            {"heartbeat": {"status": 7}, "monitor": {"name": "x"}},
            "heartbeat.status: expected 0 to 3",
        ),
        ({"heartbeat": {"status": 0}, "monitor": {"name": " "}}, "monitor.name: empty"),
        ({"heartbeat": "down", "monitor": {}}, "heartbeat: expected an object"),
        (["down"], "body: expected an object"),
    ],
)
def test_a_body_it_cannot_map_names_the_first_problem(body: object, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        uptime_kuma.parse(inline(body))


def test_a_form_data_body_without_data_is_a_body_error() -> None:
    raw = b'--b\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n--b--\r\n'

    with pytest.raises(BodyError, match="no 'data' field"):
        uptime_kuma.parse(inline(raw, "multipart/form-data; boundary=b"))
