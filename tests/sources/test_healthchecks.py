"""Healthchecks webhook integration -> signals; a cron check fails at the run it missed."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.delivery import Delivery, MappingError
from ingest.sources import healthchecks
from tests.fixtures import fixture_names, load_fixture

SOURCE = "healthchecks"
RECEIVED = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def parse(name: str) -> list:
    return healthchecks.parse(load_fixture(SOURCE, name).delivery())


def inline(body: object) -> Delivery:
    return Delivery(source=SOURCE, body=orjson.dumps(body), received_at=RECEIVED)


@pytest.mark.parametrize("name", fixture_names(SOURCE))
def test_every_healthchecks_fixture_parses(name: str) -> None:
    parse(name)


def test_a_cron_check_fails_at_the_run_it_missed_not_at_the_flip() -> None:
    (signal,) = parse("down_cron_missed_run")

    assert (signal.kind, signal.state) == ("cron", "failing")
    assert signal.subject == "payment-reconciliation"
    # Last ping 2025-03-13 02:00:07 Europe/Riga; the next 02:00 run is 00:00 UTC on the 14th.
    assert signal.occurred_at == datetime(2025, 3, 14, 0, 0, tzinfo=UTC)
    assert signal.notified_at == datetime(2025, 3, 14, 1, 0, 44, 812000, tzinfo=UTC)
    assert signal.attribute_map == {
        "down_at": "2025-03-14T01:00:41Z",
        "schedule": "0 2 * * *",
        "tz": "Europe/Riga",
        "grace": "3600",
        "last_ping": "2025-03-13T00:00:07Z",
        "code": "5b3c9a2e-8f41-4d7a-9e0c-2f6a1b7d3e94",
        "missed_run": "2025-03-14T00:00:00Z",
    }
    assert (signal.service, signal.severity) == ("payments", "P1")
    assert signal.label_map == {"prod": "", "service": "payments", "severity": "critical"}


def test_a_period_check_fails_one_period_after_its_last_ping() -> None:
    (signal,) = parse("down_period")

    assert signal.subject == "Backup offsite sync"
    assert signal.occurred_at == datetime(2025, 3, 14, 9, 15, 22, tzinfo=UTC)
    assert signal.attribute_map["timeout"] == "21600"
    assert "down_at" not in signal.attribute_map  # $JSON alone has no flip time
    assert signal.service == "storage"


def test_a_failure_the_job_reported_itself_is_dated_at_that_ping() -> None:
    (signal,) = parse("down_failure_ping")

    assert signal.occurred_at == datetime(2025, 3, 14, 0, 7, 12, tzinfo=UTC)
    assert "missed_run" not in signal.attribute_map
    assert signal.summary.startswith("payment-reconciliation reported a failure")


def test_the_small_template_fails_at_the_flip_time() -> None:
    (signal,) = parse("down_small_template")

    assert (signal.subject, signal.state) == ("invoice-mailer", "failing")
    assert signal.occurred_at == datetime(2025, 3, 14, 4, 30, 1, tzinfo=UTC)
    assert signal.time_source == "source"


def test_an_up_flip_is_ok_at_its_time() -> None:
    (signal,) = parse("up")

    assert (signal.subject, signal.state) == ("payment-reconciliation", "ok")
    assert signal.occurred_at == datetime(2025, 3, 14, 6, 12, 55, tzinfo=UTC)
    assert signal.started_at is None


def test_the_test_button_yields_no_signals() -> None:
    assert parse("test") == []


def test_an_oncalendar_schedule_uses_healthchecks_own_next_ping() -> None:
    check = {"name": "rotate-logs", "status": "down", "schedule": "Mon..Fri 18:30", "tz": "UTC",
             "grace": 600, "last_ping": "2025-03-13T18:30:04+00:00",
             "next_ping": "2025-03-14T18:30:00+00:00"}
    body = {"name": "rotate-logs", "status": "down", "now": "2025-03-14T18:40:10+00:00",
            "check": check}

    (signal,) = healthchecks.parse(inline(body))

    assert signal.occurred_at == datetime(2025, 3, 14, 18, 30, tzinfo=UTC)


def test_a_down_without_any_time_is_dated_by_its_receipt() -> None:
    (signal,) = healthchecks.parse(inline({"name": "x", "status": "down"}))

    assert (signal.occurred_at, signal.time_source) == (RECEIVED, "receipt")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"status": "down"}, "name: missing"),
        ({"name": "x", "status": "grace"}, "status: expected up or down"),
        (
            {"name": "x", "status": "down", "check": {"grace": "1h"}},
            "check.grace: expected a number",
        ),
        ([], "body: expected an object"),
    ],
)
def test_a_body_it_cannot_map_names_the_first_problem(body: object, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        healthchecks.parse(inline(body))
