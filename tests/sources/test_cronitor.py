"""Cronitor: a monitor's ALERT and RECOVERY, timed at receipt (the payload has no time)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.delivery import Delivery, MappingError
from ingest.signals import Link, Signal
from ingest.sources import cronitor
from tests.fixtures import load_fixture


def parse(name: str) -> list[Signal]:
    return cronitor.parse(load_fixture("cronitor", name).delivery())


def parse_body(body: object) -> list[Signal]:
    return cronitor.parse(
        Delivery(
            source="cronitor",
            body=orjson.dumps(body),
            received_at=datetime(2025, 3, 14, 12, tzinfo=UTC),
        )
    )


def test_a_job_alert_is_a_failing_cron_signal_of_the_monitor_at_receipt() -> None:
    [signal] = parse("job_alert_not_run")
    received = datetime(2025, 3, 14, 2, 17, 4, 512000, tzinfo=UTC)
    assert signal.source == "cronitor"
    assert signal.kind == "cron"
    assert signal.subject == "Nightly invoice export"
    assert signal.state == "failing"
    assert signal.occurred_at == received
    assert signal.notified_at == received
    assert signal.time_source == "receipt"
    assert signal.severity is None
    assert signal.service is None
    assert signal.summary == (
        "Nightly invoice export has not run in 15 minutes. Expected at 02:00 UTC."
    )
    assert signal.label_map == {"environment": "production", "group": "billing"}
    assert signal.attribute_map == {
        "monitor_key": "nightly-invoice-export",
        "rule": "not_run_in",
        "environment": "production",
        "group": "billing",
    }
    assert signal.links == (
        Link("https://cronitor.io/app/issues/d8Kq2L", "Cronitor issue"),
        Link(
            "https://cronitor.io/app/monitors/nightly-invoice-export",
            "Cronitor monitor Nightly invoice export",
        ),
    )


def test_a_recovery_is_ok_for_the_same_subject() -> None:
    [alert] = parse("job_alert_not_run")
    [recovery] = parse("job_recovery")
    assert recovery.subject == alert.subject
    assert recovery.state == "ok"
    assert recovery.occurred_at == datetime(2025, 3, 14, 2, 41, 9, 3000, tzinfo=UTC)


def test_a_failed_http_check_is_an_uptime_signal() -> None:
    [signal] = parse("check_alert_request")
    assert (signal.kind, signal.subject, signal.state) == (
        "uptime",
        "Checkout API health",
        "failing",
    )
    assert "group" not in signal.label_map  # null in the payload


def test_the_type_is_read_case_insensitively() -> None:
    [signal] = parse_body({"id": "k", "monitor": "Backup", "type": "recovery"})
    assert signal.state == "ok"
    assert signal.summary == "Backup recovered"


def test_a_monitor_without_a_name_is_known_by_its_key() -> None:
    [signal] = parse_body(
        {"id": "db-backup", "monitor": "", "type": "ALERT", "rule": "ran_longer_than"}
    )
    assert signal.subject == "db-backup"
    assert signal.summary == "db-backup failing (ran_longer_than)"


def test_an_unknown_type_is_refused_with_the_vocabulary() -> None:
    with pytest.raises(MappingError, match=r"^type: expected ALERT or RECOVERY, got 'PAUSED'$"):
        parse_body({"id": "k", "monitor": "Backup", "type": "PAUSED"})


def test_a_payload_without_a_type_names_the_field() -> None:
    with pytest.raises(MappingError, match=r"^type: missing$"):
        parse_body(
            {"id": "UH6G3i", "rule": "request_triggered", "monitor": "app", "description": "x"}
        )
