"""Sentry integration-platform webhooks: issue alerts, issues and metric alerts
(getsentry/sentry-docs, docs/organization/integrations/integration-platform/webhooks*)."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from ingest.delivery import Delivery, keep_headers
from ingest.signals import Signal
from ingest.sources import sentry
from tests.fixtures import fixture_names, load_fixture
from tests.helpers import SECRETS, signed_headers

PEOPLE = ("Meredith Heller", "162.217.75.90", "162.218.85.90")


def parse(name: str) -> list[Signal]:
    return sentry.parse(load_fixture("sentry", name).delivery())


def changed(name: str, action: str) -> list[Signal]:
    fixture = load_fixture("sentry", name)
    body = orjson.loads(fixture.body) | {"action": action}
    return sentry.parse(Delivery(source="sentry", body=orjson.dumps(body),
                                 received_at=fixture.received_at,
                                 headers=keep_headers(fixture.headers)))


def test_an_issue_alert_fails_at_the_events_time_and_was_sent_at_the_hook_timestamp() -> None:
    """TIMELINE.md: occurred_at the tool's time (the event's ``datetime``); notified_at
    its send time (``Sentry-Hook-Timestamp``, Unix seconds)."""
    [signal] = parse("event_alert")
    assert (signal.kind, signal.state, signal.action) == ("alert", "failing", "triggered")
    assert signal.subject == "Sentry issue 1117540176"
    assert signal.service == "front-end"  # the project, from the event's API URL
    assert signal.occurred_at == datetime(2019, 8, 19, 21, 6, 17, 677000, tzinfo=UTC)
    assert signal.notified_at == datetime(2019, 8, 19, 21, 6, 18, tzinfo=UTC)
    assert signal.severity == "P2"  # level error


def test_an_issue_is_created_failing_and_resolved_ok_for_the_same_subject() -> None:
    [created], [resolved] = parse("issue_created"), parse("issue_resolved")
    assert (created.state, resolved.state) == ("failing", "ok")
    assert created.subject == resolved.subject == "Sentry issue 1170820242"
    assert created.occurred_at == datetime(2019, 8, 19, 20, 58, 37, 391000, tzinfo=UTC)
    # The issue carries no resolution time: receipt, and the signal says so.
    assert (resolved.time_source, resolved.occurred_at) == (
        "receipt", load_fixture("sentry", "issue_resolved").received_at)


@pytest.mark.parametrize("action", ["assigned", "archived", "ignored"])
def test_assigning_or_archiving_an_issue_says_nothing_about_its_state(action: str) -> None:
    """Rule 3: only ``ok`` recovers; archiving silences, it does not fix."""
    assert changed("issue_created", action) == []


def test_an_unresolved_issue_fails_again_at_its_last_event() -> None:
    [signal] = changed("issue_resolved", "unresolved")
    assert signal.state == "failing"
    assert signal.occurred_at == datetime(2019, 8, 19, 21, 6, 17, 677000, tzinfo=UTC)


def test_a_metric_alert_is_critical_then_resolved_for_its_rule() -> None:
    [critical], [resolved] = parse("metric_alert_critical"), parse("metric_alert_resolved")
    assert (critical.state, critical.severity, critical.subject) == (
        "failing", "P1", "Too many errors")
    assert critical.occurred_at == datetime(2020, 9, 13, 12, 26, 40, tzinfo=UTC)
    assert (resolved.state, resolved.subject, resolved.started_at) == (
        "ok", "Too many errors", None)


def test_a_metric_warning_is_a_warning() -> None:
    """Rule 6: the rule's warning threshold is a risk, it opens no incident."""
    [signal] = changed("metric_alert_critical", "warning")
    assert signal.state == "warning"


def test_the_installation_maps_to_nothing() -> None:
    assert parse("installation_created") == []


def test_no_person_reaches_a_signal() -> None:
    for name in fixture_names("sentry"):
        text = orjson.dumps([s.to_json() for s in parse(name)]).decode()
        for person in PEOPLE:
            assert person not in text, (name, person)


async def test_a_forged_signature_is_refused(client: Any) -> None:
    fixture = load_fixture("sentry", "event_alert")
    headers = signed_headers("sentry", fixture.body + b" ", fixture.headers)
    response = await client.post("/v1/webhooks/sentry", data=fixture.body, headers=headers)
    assert response.status == 401
    wrong_key = hmac.new(b"not-the-client-secret", fixture.body, hashlib.sha256).hexdigest()
    headers = signed_headers("sentry", fixture.body, fixture.headers)
    headers["Sentry-Hook-Signature"] = wrong_key
    response = await client.post("/v1/webhooks/sentry", data=fixture.body, headers=headers)
    assert response.status == 401


async def test_a_delivery_replayed_outside_the_timestamp_window_is_refused(
        client: Any) -> None:
    """Like the other signed sources: ``Sentry-Hook-Timestamp`` must be within
    ``signature_tolerance_seconds`` (300 s) of receipt."""
    fixture = load_fixture("sentry", "issue_created")
    stale = datetime.fromtimestamp(time.time() - 600, UTC)
    sent = {k: v for k, v in fixture.headers.items() if k != "Sentry-Hook-Timestamp"}
    headers = signed_headers("sentry", fixture.body, sent, at=stale)
    response = await client.post("/v1/webhooks/sentry", data=fixture.body, headers=headers)
    assert response.status == 401
    fresh = signed_headers("sentry", fixture.body, fixture.headers)
    response = await client.post("/v1/webhooks/sentry", data=fixture.body, headers=fresh)
    assert response.status == 202
    assert hmac.compare_digest(
        fresh["Sentry-Hook-Signature"],
        hmac.new(SECRETS["sentry"].encode(), fixture.body, hashlib.sha256).hexdigest())
