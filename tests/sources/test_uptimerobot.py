"""UptimeRobot webhook alert contact -> signals."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.delivery import Delivery, MappingError
from ingest.signals import Signal
from ingest.sources import uptimerobot
from tests.fixtures import fixture_names, load_fixture

SOURCE = "uptimerobot"
RECEIVED = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def parse(name: str) -> list[Signal]:
    return uptimerobot.parse(load_fixture(SOURCE, name).delivery())


def inline(body: dict[str, object]) -> Delivery:
    return Delivery(source=SOURCE, body=orjson.dumps(body), received_at=RECEIVED,
                    headers={"content-type": "application/json"})


# help.uptimerobot.com "Webhook Integration": *alertType* 1 down, 2 up, 3 SSL expiry; the
# "Test" button sends monitor 0 with no name (or the variables unsubstituted).
KINDS = {"1": ("uptime", "failing"), "2": ("uptime", "ok"), "3": ("ssl", "warning")}


def fields(name: str) -> dict[str, str]:
    fixture = load_fixture(SOURCE, name)
    delivery = fixture.delivery()
    return {k: str(v) for k, v in dict(delivery.json_or_form()).items()}


@pytest.mark.parametrize("name", fixture_names(SOURCE))
def test_every_uptimerobot_fixture_is_what_its_alert_type_says(name: str) -> None:
    sent = fields(name)
    signals = parse(name)

    if name == "test":
        assert sent["monitorID"] == "0"
        assert signals == []
        return
    (signal,) = signals
    assert (signal.kind, signal.state) == KINDS[sent["alertType"]]
    assert signal.attribute_map["monitor_id"] == sent["monitorID"]


def test_the_certificate_signal_carries_the_certificates_expiry_from_the_payload() -> None:
    """TIMELINE.md: a certificate's ``notAfter`` is the source's time; UptimeRobot sends it
    as ``*sslExpiryDate*``. The signal's ``expires_at`` is that instant, not an estimate."""
    sent = fields("ssl_expiry")
    (signal,) = parse("ssl_expiry")

    not_after = datetime.fromisoformat(sent["sslExpiryDate"])
    assert datetime.fromisoformat(signal.attribute_map["expires_at"]) == not_after
    assert "expires_at_estimated" not in signal.attribute_map


def test_an_expired_certificate_fails_at_the_payloads_not_after() -> None:
    """TIMELINE.md rule 6: an expired certificate is failing, with ``occurred_at`` = the
    certificate's ``notAfter`` when known: the fixture's alert, days later, expired."""
    fixture = load_fixture(SOURCE, "ssl_expiry")
    body = orjson.loads(fixture.body)
    body.update(alertDetails="SSL certificate has expired", alertDateTime="1743163200",
                sslExpiryDaysLeft="0")  # 2025-03-27T12:00:00Z + 1 day
    delivery = Delivery(source=SOURCE, body=orjson.dumps(body),
                        received_at=datetime(2025, 3, 28, 12, 0, 3, tzinfo=UTC),
                        headers=fixture.delivery().headers)

    (signal,) = uptimerobot.parse(delivery)

    not_after = datetime.fromisoformat(body["sslExpiryDate"])
    assert (signal.kind, signal.state) == ("ssl", "failing")
    assert signal.occurred_at == not_after
    assert datetime.fromisoformat(signal.attribute_map["expires_at"]) == not_after


def test_a_down_alert_is_failing_at_its_alert_time() -> None:
    (signal,) = parse("down")

    assert (signal.kind, signal.subject, signal.state) == ("uptime", "Storefront", "failing")
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 3, tzinfo=UTC)
    assert signal.notified_at == datetime(2025, 3, 14, 10, 3, 12, 700000, tzinfo=UTC)
    assert signal.summary == "Connection Timeout"
    assert signal.links[0].url == "https://www.example-shop.com/"
    assert (signal.service, signal.severity) == (None, None)
    assert signal.attribute_map == {"monitor_id": "797423818"}


def test_a_form_encoded_up_alert_is_ok_and_carries_the_start_of_the_downtime() -> None:
    (signal,) = parse("up")

    assert (signal.subject, signal.state) == ("Storefront", "ok")
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 21, tzinfo=UTC)
    assert signal.started_at == datetime(2025, 3, 14, 10, 3, tzinfo=UTC)  # 1080 s before
    assert signal.attribute_map["down_for_seconds"] == "1080"


def test_an_ssl_expiry_alert_is_a_warning_for_the_host_with_its_expiry_date() -> None:
    (signal,) = parse("ssl_expiry")

    assert (signal.kind, signal.state, signal.subject) == ("ssl", "warning", "www.example-shop.com")
    assert signal.occurred_at == datetime(2025, 3, 14, 6, 0, tzinfo=UTC)
    assert signal.attribute_map["expires_at"] == "2025-03-27T12:00:00Z"
    assert signal.attribute_map["days_left"] == "13"
    assert "expires_at_estimated" not in signal.attribute_map


def test_an_expired_certificate_fails_at_its_expiry_date() -> None:
    body = {"monitorID": 1, "monitorURL": "https://old.example.com/", "monitorFriendlyName": "Old",
            "alertType": 3, "alertDateTime": 1741932000, "sslExpiryDate": "2025-03-10T00:00:00Z",
            "sslExpiryDaysLeft": 0}

    (signal,) = uptimerobot.parse(inline(body))

    assert (signal.kind, signal.state) == ("ssl", "failing")
    assert signal.occurred_at == datetime(2025, 3, 10, tzinfo=UTC)


def test_an_unreadable_expiry_date_is_estimated_from_the_days_left() -> None:
    body = {"monitorID": 1, "monitorURL": "https://a.example.com/", "monitorFriendlyName": "A",
            "alertType": 3, "alertDateTime": 1741932000, "sslExpiryDate": "27th of March",
            "sslExpiryDaysLeft": "13"}

    (signal,) = uptimerobot.parse(inline(body))

    assert signal.attribute_map["expires_at"] == "2025-03-27T06:00:00Z"
    assert signal.attribute_map["expires_at_estimated"] == "true"


def test_a_test_delivery_yields_no_signals() -> None:
    assert parse("test") == []


def test_unsubstituted_variables_are_a_test_too() -> None:
    assert uptimerobot.parse(inline({"monitorID": "*monitorID*", "alertType": "*alertType*"})) == []


def test_an_alert_without_time_is_dated_by_its_receipt() -> None:
    body = {"monitorID": 9, "monitorFriendlyName": "API", "alertType": 1}

    (signal,) = uptimerobot.parse(inline(body))

    assert (signal.occurred_at, signal.time_source) == (RECEIVED, "receipt")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"monitorID": 9, "monitorFriendlyName": "API"}, "alertType: missing"),
        (
            {"monitorID": 9, "monitorFriendlyName": "API", "alertType": "x"},
            "alertType: expected a number",
        ),
        ({"monitorID": 9, "monitorFriendlyName": "API", "alertType": 5}, "alertType: expected 1"),
        ({"monitorID": 9, "alertType": 1}, "monitorFriendlyName: missing"),
        ({"monitorID": {"id": 9}}, "monitorID: expected a string or a number"),
    ],
)
def test_a_body_it_cannot_map_names_the_first_problem(
    body: dict[str, object], message: str
) -> None:
    with pytest.raises(MappingError, match=message):
        uptimerobot.parse(inline(body))
