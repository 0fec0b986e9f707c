"""Grafana Alerting webhook contact point -> signals."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.delivery import Delivery, MappingError, keep_headers
from ingest.signals import Signal
from ingest.sources import grafana
from tests.fixtures import fixture_names, load_fixture

SOURCE = "grafana"
RECEIVED = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def parse(name: str) -> list[Signal]:
    return grafana.parse(load_fixture(SOURCE, name).delivery())


def inline(body: object, headers: dict[str, str] | None = None) -> Delivery:
    return Delivery(source=SOURCE, body=orjson.dumps(body), received_at=RECEIVED,
                    headers=headers or {})


@pytest.mark.parametrize("name", fixture_names(SOURCE))
def test_every_grafana_fixture_is_one_signal_per_real_alert_named_by_its_fingerprint(
        name: str) -> None:
    """grafana/alerting ``webhookMessage``: alerts with a ``fingerprint`` each; the Test
    button's made-up alert (``TestAlert``) is no signal."""
    alerts = orjson.loads(load_fixture(SOURCE, name).body)["alerts"]
    real = [a for a in alerts if a["labels"]["alertname"] not in grafana.TEST_ALERTNAMES]

    assert [s.subject for s in parse(name)] == [a["fingerprint"] for a in real]


def test_grouped_firing_alerts_yield_one_failing_signal_each() -> None:
    first, second = parse("grouped_firing")

    assert first.source == "grafana"
    # TIMELINE.md: the alert's fingerprint, as Grafana sends it per alert.
    assert (first.subject, second.subject) == ("a3f9c2e1d4b56789", "b4e0d3f2c5a6789a")
    assert first.label_map["instance"] == "pg-orders-1.db.example.com"
    assert (first.state, second.state) == ("failing", "failing")
    # Grafana sent +01:00 times: the same instants in UTC.
    assert first.occurred_at == datetime(2025, 3, 14, 8, 12, 30, tzinfo=UTC)
    assert second.occurred_at == datetime(2025, 3, 14, 8, 13, 30, tzinfo=UTC)
    assert (first.service, first.severity) == ("orders-db", "P3")
    assert first.attribute_map["fingerprint"] == "a3f9c2e1d4b56789"
    assert first.attribute_map["value"].startswith("[ var='B' labels={instance=pg-orders-1")


def test_a_signed_delivery_is_notified_at_its_timestamp_header() -> None:
    first = parse("grouped_firing")[0]

    assert first.notified_at == datetime(2025, 3, 14, 8, 14, 2, tzinfo=UTC)


@pytest.mark.parametrize("header", ["X-Grafana-Alerting-Timestamp",
                                    "X-Grafana-Alerting-Signature-Timestamp"])
def test_either_timestamp_header_is_kept_and_is_the_send_time(header: str) -> None:
    """Issue 10 (10): the second timestamp header was accepted by authentication but not
    kept, so notified_at fell back to receipt. Grafana's docs (webhook notifier, "HMAC
    signature"): the timestamp header, whatever its name, carries the Unix time Grafana
    signed and sent the request at."""
    fixture = load_fixture(SOURCE, "grouped_firing")
    sent = {"Content-Type": "application/json", header: "1741940042",
            "X-Grafana-Alerting-Signature": "0" * 64}
    delivery = Delivery(source=SOURCE, body=fixture.body, received_at=fixture.received_at,
                        headers=keep_headers(sent))

    assert header.lower() in delivery.headers
    assert "x-grafana-alerting-signature" not in delivery.headers  # a credential
    assert grafana.parse(delivery)[0].notified_at == datetime(2025, 3, 14, 8, 14, 2, tzinfo=UTC)


def test_an_unsigned_delivery_is_notified_when_received() -> None:
    first = parse("resolved")[0]

    assert first.notified_at == datetime(2025, 3, 14, 8, 42, 1, 100000, tzinfo=UTC)


def test_links_include_dashboard_panel_and_silence() -> None:
    first = parse("grouped_firing")[0]

    assert [link.title for link in first.links] == [
        "source", "dashboard", "panel", "silence", "runbook",
    ]
    assert first.links[2].url == "https://grafana.example.com/d/pg-overview?orgId=1&viewPanel=12"


def test_resolved_alerts_are_ok_at_their_end_with_their_start() -> None:
    first, second = parse("resolved")

    assert (first.state, second.state) == ("ok", "ok")
    assert first.occurred_at == datetime(2025, 3, 14, 8, 41, 30, tzinfo=UTC)
    assert first.started_at == datetime(2025, 3, 14, 8, 12, 30, tzinfo=UTC)
    assert second.occurred_at == datetime(2025, 3, 14, 8, 40, 30, tzinfo=UTC)
    assert first.subject == parse("grouped_firing")[0].subject


def test_the_test_notification_yields_no_signals() -> None:
    assert parse("test_notification") == []


def test_the_legacy_test_notification_yields_no_signals() -> None:
    body = {"ruleName": "Test notification", "state": "alerting",
            "title": "[Alerting] Test notification"}

    assert grafana.parse(inline(body)) == []


def test_a_legacy_alert_is_refused_with_a_plain_message() -> None:
    with pytest.raises(MappingError, match="legacy Grafana alert"):
        grafana.parse(inline({"ruleName": "CPU", "state": "alerting", "evalMatches": []}))


def test_a_malformed_timestamp_header_falls_back_to_the_receipt() -> None:
    body = {"alerts": [{"status": "firing", "labels": {"alertname": "CPU"},
                        "startsAt": "2025-03-14T11:00:00Z"}]}

    (signal,) = grafana.parse(inline(body, {"x-grafana-alerting-timestamp": "soon"}))

    assert signal.notified_at == RECEIVED
