"""Google Cloud Monitoring: webhook notifications, schema 1.2
(cloud.google.com/monitoring/support/notification-options#webhooks), authenticated by a
token in the URL or HTTP basic auth (the channel's "webhook with basic auth")."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from ingest.delivery import Delivery, MappingError
from ingest.signals import Link, Signal
from ingest.sources import google_cloud_monitoring
from tests.fixtures import load_fixture
from tests.helpers import TOKENS
from tests.sources.folding import fold

SOURCE = "google-cloud-monitoring"
CPU = ("Monitor-Project-Cluster: VM Instance - CPU utilization [MAX] on "
       "gke-cluster-1-default-pool-e2df4cbd-dgp3 "
       "{instance_name=gke-cluster-1-default-pool-e2df4cbd-dgp3}")
JSON = {"Content-Type": "application/json"}


def parse(name: str) -> list[Signal]:
    return google_cloud_monitoring.parse(load_fixture(SOURCE, name).delivery())


def with_body(name: str, change: Any) -> list[Signal]:
    fixture = load_fixture(SOURCE, name)
    body = orjson.loads(fixture.body)
    change(body["incident"])
    return google_cloud_monitoring.parse(Delivery(SOURCE, orjson.dumps(body),
                                                  fixture.received_at,
                                                  fixture.delivery().headers))


def test_an_open_incident_fails_at_its_started_at() -> None:
    """started_at: Unix seconds; state open."""
    [signal] = parse("incident_open")
    assert (signal.source, signal.kind, signal.subject) == (SOURCE, "alert", CPU)
    assert signal.state == "failing"
    assert signal.occurred_at == datetime(2020, 1, 1, 1, 1, 1, tzinfo=UTC)
    assert signal.notified_at == datetime(2020, 1, 1, 1, 1, 3, 870000, tzinfo=UTC)
    assert signal.severity == "P1"  # "severity": "Critical"
    assert signal.service == "checkout"  # policy_user_labels.service
    assert signal.links == (Link(
        "https://console.cloud.google.com/monitoring/alerting/incidents/0.lxfiw61fsv7p"
        "?project=internal-project", "Incident"),)
    assert signal.attribute_map["incident_id"] == "0.opqiw61fsv7p"


def test_a_closed_incident_recovers_at_its_ended_at_and_carries_its_start() -> None:
    """A recovery that knows its start (TIMELINE.md rule 4)."""
    [signal] = parse("incident_closed")
    assert (signal.subject, signal.state) == (CPU, "ok")
    assert signal.occurred_at == datetime(2020, 1, 1, 11, 11, 11, tzinfo=UTC)
    assert signal.started_at == datetime(2020, 1, 1, 1, 1, 1, tzinfo=UTC)


def test_open_then_closed_is_one_incident_and_a_lone_closed_one_is_seen_after_the_fact() -> None:
    both = fold((SOURCE, "incident_open"), (SOURCE, "incident_closed"))
    (incident,) = both.incidents()
    assert (incident.started_at, incident.resolved_at) == (
        datetime(2020, 1, 1, 1, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, 11, 11, 11, tzinfo=UTC))
    (late,) = fold((SOURCE, "incident_closed")).incidents()
    assert late.started_at == incident.started_at


def test_a_repeat_notification_of_an_open_incident_is_a_repeat() -> None:
    """Repeat notifications resend the open incident (same started_at): rule 4."""
    engine = fold((SOURCE, "incident_open"), (SOURCE, "incident_open"))
    (incident,) = engine.incidents()
    assert incident.started_at == datetime(2020, 1, 1, 1, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("word", "ours"), [
    ("Critical", "P1"), ("Error", "P2"), ("Warning", "P3"), ("No severity", None)])
def test_the_policy_severity_maps_to_ours(word: str, ours: str | None) -> None:
    """``No severity`` leaves the source's default."""
    [signal] = with_body("incident_open", lambda i: i.update(severity=word))
    assert signal.severity == ours


def test_an_uptime_check_is_an_uptime_failure() -> None:
    [signal] = parse("uptime_open")
    assert signal.kind == "uptime"
    assert signal.subject == ("Storefront uptime: Failure of uptime check_id storefront-home "
                              "on storefront-home {check_id=storefront-home}")
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 2, 10, tzinfo=UTC)


def test_the_test_notification_maps_to_no_signal() -> None:
    assert parse("test_notification") == []


def test_a_zero_start_is_unknown_and_the_receipt_stands() -> None:
    [signal] = with_body("incident_open", lambda i: i.update(started_at=0))
    assert signal.time_source == "receipt"
    assert signal.occurred_at == load_fixture(SOURCE, "incident_open").received_at


def test_an_unknown_state_names_the_field() -> None:
    with pytest.raises(MappingError, match=r"^incident\.state: unknown state 'snoozed'$"):
        with_body("incident_open", lambda i: i.update(state="snoozed"))


# --- authentication through the real server -------------------------------------------

async def test_the_token_in_the_url_is_accepted(client: Any) -> None:
    body = load_fixture(SOURCE, "incident_open").body
    response = await client.post(f"/v1/webhooks/{SOURCE}?token={TOKENS[SOURCE]}", data=body,
                                 headers=JSON)
    assert response.status == 202
    [signal] = (await response.json())["signals"]
    assert signal["subject"] == CPU


async def test_basic_auth_with_the_token_as_password_is_accepted(client: Any) -> None:
    body = load_fixture(SOURCE, "incident_open").body
    basic = base64.b64encode(f"gcp:{TOKENS[SOURCE]}".encode()).decode()
    response = await client.post(f"/v1/webhooks/{SOURCE}", data=body,
                                 headers={**JSON, "Authorization": f"Basic {basic}"})
    assert response.status == 202


@pytest.mark.parametrize("password", ["wrong-token-0123456789", ""])
async def test_a_wrong_basic_password_or_none_is_refused(client: Any, password: str) -> None:
    body = load_fixture(SOURCE, "incident_open").body
    headers = dict(JSON)
    if password:
        basic = base64.b64encode(f"gcp:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    response = await client.post(f"/v1/webhooks/{SOURCE}", data=body, headers=headers)
    assert response.status == 401
