"""Healthchecks webhook integration -> signals; a cron check fails at the run it missed."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.delivery import Delivery, MappingError
from ingest.signals import Signal
from ingest.sources import healthchecks
from projections.drafts.draft import build_draft
from tests.fixtures import fixture_names, load_fixture
from tests.sources.folding import fold

SOURCE = "healthchecks"
RECEIVED = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def parse(name: str) -> list[Signal]:
    return healthchecks.parse(load_fixture(SOURCE, name).delivery())


def inline(body: object) -> Delivery:
    return Delivery(source=SOURCE, body=orjson.dumps(body), received_at=RECEIVED)


@pytest.mark.parametrize("name", [n for n in fixture_names(SOURCE) if n != "test"])
def test_every_healthchecks_fixture_is_one_cron_signal_of_its_flip(name: str) -> None:
    """A webhook notification is one flip of one check (healthchecks.io/docs/webhooks/):
    ``$STATUS`` up → ok, down → failing, never dated after the flip."""
    fixture = load_fixture(SOURCE, name)
    body = orjson.loads(fixture.body)
    flip = body.get("now")

    (signal,) = parse(name)

    assert signal.kind == "cron"
    assert signal.state == {"up": "ok", "down": "failing"}[body["status"]]
    assert signal.subject == body["name"]
    assert signal.notified_at == fixture.received_at
    if flip is not None:
        assert signal.occurred_at <= datetime.fromisoformat(flip)


@pytest.mark.parametrize("name", [n for n in fixture_names(SOURCE) if n.startswith("down_")])
def test_no_down_fixture_carries_a_next_ping(name: str) -> None:
    """Fixtures are faithful: a check that is down has ``next_ping`` null
    (hc/api/models.py ``Check.get_grace_start``: None when the check is down)."""
    body = orjson.loads(load_fixture(SOURCE, name).body)
    check = body.get("check", body if "last_ping" in body else {})

    assert check.get("next_ping") is None


def test_a_cron_check_fails_at_the_run_it_missed_not_at_the_flip() -> None:
    (signal,) = parse("down_cron_missed_run")

    assert (signal.kind, signal.state) == ("cron", "failing")
    assert signal.subject == "payment-reconciliation"
    # Last ping 2025-03-13 02:00:07 Europe/Riga; the next 02:00 run is 00:00 UTC on the 14th.
    assert signal.occurred_at == datetime(2025, 3, 14, 0, 0, tzinfo=UTC)
    assert signal.notified_at == datetime(2025, 3, 14, 1, 0, 44, 812000, tzinfo=UTC)
    assert signal.attribute_map == {
        "down_at": "2025-03-14T01:00:00Z",
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


def test_an_oncalendar_check_fails_at_the_run_it_missed() -> None:
    """Issue 10 (9): the OnCalendar branch read ``next_ping``, which a down check never
    has. TIMELINE.md rule 8: the first deadline after the last ping; Healthchecks dated
    the flip at that deadline + grace (sendalerts ``handle_going_down``)."""
    (signal,) = parse("down_oncalendar_missed_run")

    # Last ping Thursday 02:00:05 Riga; the next weekday 02:00 is Friday 00:00 UTC.
    assert signal.occurred_at == datetime(2025, 3, 14, 0, 0, tzinfo=UTC)
    assert signal.attribute_map["missed_run"] == "2025-03-14T00:00:00Z"
    assert signal.summary == "ledger-export missed the run due 2025-03-14T00:00:00Z"


def test_a_run_that_started_and_never_finished_is_not_called_missed() -> None:
    """Issue 10 (9): a run that sent ``/start`` and never finished was "missed the run".
    ``started`` is true in ``$JSON``; the failure starts at Healthchecks' grace start."""
    (signal,) = parse("down_started_hung")

    assert signal.occurred_at == datetime(2025, 3, 14, 0, 0, tzinfo=UTC)
    assert "missed_run" not in signal.attribute_map
    assert signal.attribute_map["hung_run"] == "2025-03-14T00:00:00Z"
    assert "missed" not in signal.summary
    assert signal.summary.startswith(
        "payment-reconciliation started the run due 2025-03-14T00:00:00Z, which did not "
        "finish within its grace period (1 h)")


def test_the_draft_calls_a_hung_run_a_run_that_did_not_finish() -> None:
    """TIMELINE.md, the draft's contributing factors: the candidates the log shows; a run
    that started is not "a missed cron run"."""
    (incident,) = fold((SOURCE, "down_started_hung")).incidents()

    statements = [f.statement for f in build_draft(incident, []).factors]
    assert any("started a run" in s and "did not finish" in s for s in statements)
    assert not any("missed" in s for s in statements)


def test_a_run_started_before_its_deadline_fails_from_its_start() -> None:
    """A period check (every 6 h, 30 min grace) whose run started at 08:50, before its
    09:15:22 deadline, and hung: Healthchecks' grace start is the ``/start``
    (``get_grace_start``: min(deadline, last_start)), so the flip at 09:20 says when."""
    check = {"name": "Backup offsite sync", "status": "down", "started": True, "grace": 1800,
             "timeout": 21600, "last_ping": "2025-03-14T03:15:22+00:00", "next_ping": None}
    body = {"name": "Backup offsite sync", "status": "down", "now": "2025-03-14T09:20:00+00:00",
            "check": check}

    (signal,) = healthchecks.parse(inline(body))

    assert signal.occurred_at == datetime(2025, 3, 14, 8, 50, tzinfo=UTC)
    assert signal.attribute_map["run_started_at"] == "2025-03-14T08:50:00Z"
    assert signal.summary == ("Backup offsite sync started a run at 2025-03-14T08:50:00Z that "
                              "did not finish within its grace period (30 min)")


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
