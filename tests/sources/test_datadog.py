"""Datadog's Webhooks integration: monitor notifications, Datadog's default payload and
Hindsight's template (docs.datadoghq.com/integrations/webhooks, "Variables")."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from ingest.delivery import Delivery, MappingError
from ingest.signals import Signal
from ingest.sources import datadog
from tests.fixtures import fixture_names, load_fixture
from tests.helpers import TOKENS, signed_headers


def parse(name: str) -> list[Signal]:
    return datadog.parse(load_fixture("datadog", name).delivery())


def changed(name: str, **change: Any) -> list[Signal]:
    fixture = load_fixture("datadog", name)
    body = orjson.loads(fixture.body) | change
    return datadog.parse(Delivery(source="datadog", body=orjson.dumps(body),
                                  received_at=fixture.received_at,
                                  headers={"content-type": "application/json"}))


def test_a_triggered_monitor_group_fails_at_datadogs_own_date() -> None:
    """TIMELINE.md: occurred_at is the tool's time ($DATE, epoch ms), notified when
    received (the payload has no send time); one subject per monitor group."""
    [signal] = parse("triggered")
    assert (signal.kind, signal.state, signal.action) == ("alert", "failing", "triggered")
    assert signal.subject == "Checkout p95 latency above 2s {host:web-1}"
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 5, tzinfo=UTC)
    assert signal.notified_at == load_fixture("datadog", "triggered").received_at
    assert signal.service == "checkout"  # the monitor's service: tag
    assert signal.severity == "P2"  # $ALERT_PRIORITY
    assert signal.attribute_map["alert_cycle_key"] == "7716548234011234567"


def test_the_recovery_is_ok_for_the_same_subject() -> None:
    [failing], [recovered] = parse("triggered"), parse("recovered")
    assert (recovered.state, recovered.action) == ("ok", "resolved")
    assert recovered.subject == failing.subject
    assert recovered.occurred_at == datetime(2025, 3, 14, 10, 31, tzinfo=UTC)


def test_datadogs_default_payload_names_the_same_subject_from_its_title() -> None:
    """The default payload has no $ALERT_TRANSITION or $ALERT_SCOPE: the title's
    ``[Triggered on {host:web-1}]`` says both."""
    [default], [template] = parse("default_payload_triggered"), parse("triggered")
    assert (default.state, default.subject) == ("failing", template.subject)
    assert default.occurred_at == template.occurred_at


def test_a_warn_is_a_warning_and_a_renotification_repeats_the_state_it_is_in() -> None:
    """TIMELINE.md rule 6: a warning opens no incident; rule 4: a renotification of a
    failing monitor is a repeat. Datadog renotifies from alert, warn or no data."""
    assert [s.state for s in parse("warn")] == ["warning"]
    assert [s.state for s in changed("triggered", alert_transition="Renotify")] == ["failing"]
    warned = changed("warn", alert_transition="Renotify", alert_type="warning")
    assert [s.state for s in warned] == ["warning"]
    assert [s.state for s in changed("triggered", alert_transition="No Data")] == ["failing"]


def test_a_scope_variable_and_the_titles_scope_name_one_group_the_same_way() -> None:
    [two] = changed("triggered", alert_scope="service:checkout, host:web-1")
    assert two.subject == "Checkout p95 latency above 2s {host:web-1,service:checkout}"
    [none] = changed("triggered", alert_scope="$ALERT_SCOPE",
                     alert_title="[Triggered] Checkout p95 latency above 2s",
                     title="[Triggered] Checkout p95 latency above 2s")
    assert none.subject == "Checkout p95 latency above 2s"


def test_a_payload_without_a_time_falls_back_to_receipt_and_says_so() -> None:
    [signal] = changed("triggered", date="$DATE", last_updated="")
    assert (signal.occurred_at, signal.time_source) == (
        load_fixture("datadog", "triggered").received_at, "receipt")


@pytest.mark.parametrize("change", [
    {"alert_transition": "", "title": "Deploy finished", "alert_title": ""},
    {"title": "[TEST] [Triggered] Checkout", "alert_title": "[TEST] [Triggered] Checkout"},
    {"alert_transition": "Null", "title": "x", "alert_title": ""},
])
def test_a_test_or_an_event_that_is_no_monitor_transition_maps_to_nothing(
        change: dict[str, str]) -> None:
    assert changed("triggered", **change) == []


def test_the_message_body_never_reaches_a_signal() -> None:
    """$EVENT_MSG holds the monitor's @mentions, which name people (blameless drafts)."""
    for name in fixture_names("datadog"):
        text = orjson.dumps([s.to_json() for s in parse(name)]).decode()
        assert "jordan" not in text, name
        assert "@pagerduty" not in text, name


def test_a_date_that_is_not_epoch_names_the_field() -> None:
    with pytest.raises(MappingError, match=r"^date: not an epoch time"):
        changed("triggered", date="yesterday")


async def test_a_forged_token_is_refused_and_the_real_one_accepted(client: Any) -> None:
    """Datadog sends the custom header the webhook sets: ``Authorization: Bearer``."""
    fixture = load_fixture("datadog", "triggered")
    forged = await client.post("/v1/webhooks/datadog", data=fixture.body, headers={
        **fixture.headers, "Authorization": "Bearer not-the-token"})
    assert forged.status == 401
    userinfo = base64.b64encode(f"datadog:{TOKENS['datadog']}".encode()).decode()
    basic = await client.post("/v1/webhooks/datadog", data=fixture.body, headers={
        **fixture.headers, "Authorization": f"Basic {userinfo}"})
    assert basic.status == 202  # the URL's userinfo, as Datadog's docs suggest
    ok = await client.post("/v1/webhooks/datadog", data=fixture.body,
                           headers=signed_headers("datadog", fixture.body, fixture.headers))
    assert ok.status in (200, 202)
