"""Checkly webhook alert channel -> signals, and its webhook secret."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from ingest.delivery import Delivery, MappingError
from ingest.signals import Signal
from ingest.sources import checkly
from tests.fixtures import fixture_names, load_fixture
from tests.helpers import SECRETS, signed_headers

SOURCE = "checkly"
RECEIVED = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def parse(name: str) -> list[Signal]:
    return checkly.parse(load_fixture(SOURCE, name).delivery())


def sent(name: str) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(load_fixture(SOURCE, name).body)
    return body


def inline(**fields: object) -> Delivery:
    body = {**sent("failure"), **fields}
    return Delivery(source=SOURCE, body=orjson.dumps(body), received_at=RECEIVED,
                    headers={"content-type": "application/json"})


# checklyhq.com "Alert states": failure and escalation fail, recoveries recover, degraded
# (and de-escalation to degraded) is a warning since only ok recovers (TIMELINE.md rule 3).
EXPECTED = {"ALERT_FAILURE": "failing", "ALERT_FAILURE_REMAIN": "failing",
            "ALERT_DEGRADED_FAILURE": "failing", "ALERT_RECOVERY": "ok",
            "ALERT_DEGRADED_RECOVERY": "ok", "ALERT_DEGRADED": "warning",
            "ALERT_DEGRADED_REMAIN": "warning", "ALERT_FAILURE_DEGRADED": "warning"}


@pytest.mark.parametrize("name", fixture_names(SOURCE))
def test_every_checkly_fixture_is_what_its_alert_type_says(name: str) -> None:
    body = sent(name)
    signals = parse(name)

    if not body["check_id"]:
        assert signals == []
        return
    (signal,) = signals
    if body["alert_type"] == "ALERT_SSL":
        assert (signal.kind, signal.state) == ("ssl", "warning")
    else:
        assert (signal.kind, signal.state) == ("uptime", EXPECTED[body["alert_type"]])
        assert signal.subject == body["check_name"]
        # TIMELINE.md: the tool's own time; Checkly's STARTED_AT is the run's start.
        assert signal.occurred_at == datetime.fromisoformat(body["started_at"])
    assert signal.attribute_map["check_id"] == body["check_id"]


@pytest.mark.parametrize(("alert_type", "state"), sorted(EXPECTED.items()))
def test_each_documented_alert_state_maps_to_its_timeline_state(alert_type: str,
                                                                state: str) -> None:
    (signal,) = checkly.parse(inline(alert_type=alert_type))

    assert signal.state == state


def test_a_failure_is_failing_at_its_runs_start_and_names_the_error() -> None:
    (signal,) = parse("failure")

    assert signal.occurred_at == datetime(2025, 3, 14, 10, 2, 11, 482000, tzinfo=UTC)
    assert signal.notified_at == load_fixture(SOURCE, "failure").received_at
    assert signal.time_source == "source"
    assert signal.summary.startswith("Response time 30000ms exceeded")
    assert signal.service == "checkout"  # its service:checkout tag (TIMELINE.md "service")
    assert signal.links[0].url.startswith("https://app.checklyhq.com/checks/")
    assert signal.attribute_map["run_location"] == "Frankfurt"
    assert signal.attribute_map["group_name"] == "Storefront"


def test_a_degraded_check_is_a_risk_not_an_outage() -> None:
    """TIMELINE.md rule 6: a warning opens no incident; Checkly's degraded state is a
    check that passed slower than its degraded threshold."""
    (signal,) = parse("degraded")

    assert (signal.state, signal.subject) == ("warning", "Checkout API")


def test_an_ssl_alert_is_a_warning_for_the_domain_with_an_estimated_expiry() -> None:
    (signal,) = parse("ssl_expiry")

    assert (signal.kind, signal.subject) == ("ssl", "api.example-shop.com")
    assert signal.attribute_map["days_left"] == "14"
    assert signal.attribute_map["expires_at"] == "2025-03-28T06:00:04Z"
    assert signal.attribute_map["expires_at_estimated"] == "true"


def test_an_ssl_alert_with_no_days_left_is_an_expired_certificate() -> None:
    """TIMELINE.md rule 6: an expired certificate is failing."""
    (signal,) = checkly.parse(inline(alert_type="ALERT_SSL", ssl_days_remaining="0",
                                     ssl_check_domain="api.example-shop.com"))

    assert (signal.kind, signal.state) == ("ssl", "failing")


def test_tags_rendered_as_a_string_are_read_too() -> None:
    (signal,) = checkly.parse(inline(tags="production,service:payments,severity:critical"))

    assert (signal.service, signal.severity) == ("payments", "P1")


def test_a_heartbeat_check_is_a_cron_signal() -> None:
    (signal,) = checkly.parse(inline(check_type="HEARTBEAT"))

    assert signal.kind == "cron"


def test_an_alert_without_started_at_is_dated_by_its_receipt() -> None:
    (signal,) = checkly.parse(inline(started_at=""))

    assert (signal.occurred_at, signal.time_source) == (RECEIVED, "receipt")


def test_a_test_of_the_channel_yields_no_signals() -> None:
    assert parse("test") == []
    assert checkly.parse(inline(alert_type="NO_ALERT")) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"alert_type": ""}, "alert_type: missing"),
        ({"alert_type": "ALERT_SOMETHING"}, "alert_type: expected one of"),
        ({"check_name": ""}, "check_name: missing"),
        ({"started_at": "yesterday"}, "not a time"),
        ({"check_name": {"a": 1}}, "check_name: expected a string or a number"),
        ({"alert_type": "ALERT_SSL", "ssl_days_remaining": "soon"}, "ssl_days_remaining"),
    ],
)
def test_a_body_it_cannot_map_names_the_first_problem(fields: dict[str, object],
                                                       message: str) -> None:
    with pytest.raises(MappingError, match=message):
        checkly.parse(inline(**fields))


# --- The webhook secret, through the real server --------------------------------------
# checklyhq.com/docs/integrations/alerts/webhooks, "Webhook Secrets": x-checkly-signature
# is the hex HMAC-SHA256 of the body with the secret; "Webhook Retries": every webhook
# carries x-checkly-timestamp, its send time.


async def test_a_signed_delivery_is_accepted(client: Any) -> None:
    fixture = load_fixture(SOURCE, "failure")
    headers = signed_headers(SOURCE, fixture.body, fixture.headers)

    response = await client.post("/v1/webhooks/checkly", data=fixture.body, headers=headers)

    assert response.status == 202, await response.text()
    assert len((await response.json())["signals"]) == 1


async def test_a_delivery_without_signature_or_with_a_forged_one_is_refused(
        client: Any) -> None:
    fixture = load_fixture(SOURCE, "failure")
    forged = signed_headers(SOURCE, fixture.body + b" ", fixture.headers)
    unsigned = {k: v for k, v in signed_headers(SOURCE, fixture.body, fixture.headers).items()
                if k != "x-checkly-signature"}
    bearer = {**fixture.headers, "Authorization": f"Bearer {SECRETS[SOURCE]}"}

    for headers in (forged, unsigned, bearer):
        response = await client.post("/v1/webhooks/checkly", data=fixture.body,
                                     headers=headers)
        assert response.status == 401


async def test_a_replay_outside_the_signature_window_is_refused(client: Any) -> None:
    """The signature is good, but the delivery was sent 6 minutes ago (the window is
    ``signature_tolerance_seconds``, 300 by default)."""
    fixture = load_fixture(SOURCE, "failure")
    stale = datetime.now(UTC) - timedelta(minutes=6)
    headers = signed_headers(SOURCE, fixture.body, fixture.headers, at=stale)
    no_time = {k: v for k, v in signed_headers(SOURCE, fixture.body, fixture.headers).items()
               if k != "x-checkly-timestamp"}

    for sent_headers in (headers, no_time):
        response = await client.post("/v1/webhooks/checkly", data=fixture.body,
                                     headers=sent_headers)
        assert response.status == 401


async def test_the_timestamp_may_be_seconds_or_iso_8601(client: Any) -> None:
    """Checkly documents the header, not its form: Unix seconds, milliseconds and ISO 8601
    are all read as the send time."""
    fixture = load_fixture(SOURCE, "recovery")
    now = datetime.now(UTC)
    for stamp in (str(int(now.timestamp())), now.isoformat()):
        headers = {**signed_headers(SOURCE, fixture.body, fixture.headers),
                   "x-checkly-timestamp": stamp}
        response = await client.post("/v1/webhooks/checkly", data=fixture.body,
                                     headers=headers)
        assert response.status in (200, 202), stamp
