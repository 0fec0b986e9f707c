"""Azure Monitor: the common alert schema through an action group's webhook
(learn.microsoft.com/azure/azure-monitor/alerts/alerts-common-schema), authenticated by
the token in the webhook's URL (action-groups.md, "Webhook": no signature; basic auth
only through the URI)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from ingest.delivery import Delivery, MappingError
from ingest.signals import Signal
from ingest.sources import azure_monitor
from tests.fixtures import load_fixture
from tests.helpers import TOKENS
from tests.sources.folding import fold

METRIC = "WCUS-R2-Gen2 on wcus-r2-gen2 {ResourceId=a0a0a0a0-bbbb-cccc-dddd-e1e1e1e1e1e1}"
JSON = {"Content-Type": "application/json"}


def parse(name: str) -> list[Signal]:
    return azure_monitor.parse(load_fixture("azure-monitor", name).delivery())


def with_body(name: str, change: Any) -> list[Signal]:
    fixture = load_fixture("azure-monitor", name)
    body = orjson.loads(fixture.body)
    change(body)
    return azure_monitor.parse(Delivery("azure-monitor", orjson.dumps(body),
                                        fixture.received_at, fixture.delivery().headers))


def test_a_fired_metric_alert_fails_at_its_fired_time() -> None:
    """monitorCondition Fired; firedDateTime "when the alert instance was fired", UTC."""
    [signal] = parse("metric_fired")
    assert (signal.source, signal.kind, signal.subject) == ("azure-monitor", "alert", METRIC)
    assert signal.state == "failing"
    assert signal.occurred_at == datetime(2019, 3, 22, 13, 58, 24, 371321, tzinfo=UTC)
    assert signal.notified_at == datetime(2019, 3, 22, 13, 58, 26, 118000, tzinfo=UTC)
    assert signal.time_source == "source"
    assert signal.summary == "WCUS-R2-Gen2: Percentage CPU GreaterThan 25 (value 31.1105)"
    assert signal.service == "checkout"  # customProperties.service


def test_a_resolved_alert_recovers_at_its_resolved_time_and_carries_its_start() -> None:
    """resolvedDateTime "when the monitor condition ... is set to Resolved"; the firing
    start makes one first seen resolved a failing period seen after the fact (rule 4)."""
    [signal] = parse("metric_resolved")
    assert (signal.subject, signal.state) == (METRIC, "ok")
    assert signal.occurred_at == datetime(2019, 3, 22, 14, 3, 16, 224631, tzinfo=UTC)
    assert signal.started_at == datetime(2019, 3, 22, 13, 58, 24, 371321, tzinfo=UTC)


def test_fired_then_resolved_is_one_incident_from_fired_to_resolved() -> None:
    """TIMELINE.md rules 1 and 3: the resolution is the same subject's recovery."""
    engine = fold(("azure-monitor", "metric_fired"), ("azure-monitor", "metric_resolved"))
    (incident,) = engine.incidents()
    assert incident.started_at == datetime(2019, 3, 22, 13, 58, 24, 371321, tzinfo=UTC)
    assert incident.resolved_at == datetime(2019, 3, 22, 14, 3, 16, 224631, tzinfo=UTC)


@pytest.mark.parametrize(("azure", "ours"), [
    ("Sev0", "P1"), ("Sev1", "P2"), ("Sev2", "P3"), ("Sev3", "P4"), ("Sev4", "P4")])
def test_azure_severities_map_to_ours(azure: str, ours: str) -> None:
    """Sev0 Critical, Sev1 Error, Sev2 Warning, Sev3 Informational, Sev4 Verbose, read as
    TIMELINE.md's critical→P1, error→P2, warning→P3, info→P4 (the guide's table)."""
    [signal] = with_body("metric_fired", lambda b: b["data"]["essentials"].update(
        severity=azure))
    assert signal.severity == ours


def test_a_log_alert_is_split_by_its_dimensions_and_links_its_search() -> None:
    [signal] = parse("log_v2_fired")
    assert signal.subject == "Heartbeat missing on contoso-logs {Computer=TestComputer}"
    assert signal.severity == "P2"
    assert signal.summary == "Heartbeat missing: No heartbeat from the VM for 10 minutes"
    assert [link.title for link in signal.links] == ["Search results"]
    assert signal.label_map["Computer"] == "TestComputer"


def test_two_dimension_values_of_one_rule_are_two_subjects() -> None:
    """One dimension's resolution must never close another's failure (rule 3)."""
    [other] = with_body("log_v2_fired", lambda b: b["data"]["alertContext"]["condition"][
        "allOf"][0]["dimensions"][0].update(value="OtherComputer"))
    assert other.subject != parse("log_v2_fired")[0].subject


def test_a_resolved_log_alert_without_resolved_time_is_dated_by_receipt() -> None:
    """The docs: resolvedDateTime is "currently only applicable for metric alerts"."""
    [signal] = with_body("log_v2_fired", lambda b: b["data"]["essentials"].update(
        monitorCondition="Resolved"))
    assert signal.state == "ok"
    assert signal.time_source == "receipt"
    assert signal.started_at == datetime(2020, 7, 9, 14, 4, 49, 996450, tzinfo=UTC)


def test_an_availability_test_is_an_uptime_failure() -> None:
    [signal] = parse("availability_fired")
    assert (signal.kind, signal.severity) == ("uptime", "P1")


def test_the_action_groups_test_maps_to_no_signal() -> None:
    """The Test sends the documented samples ("a sample reference set"), whose
    subscription is the placeholder 11111111-1111-1111-1111-111111111111."""
    assert parse("test_action_group") == []


def test_a_payload_not_in_the_common_schema_names_the_setting() -> None:
    with pytest.raises(MappingError, match=r"^schemaId: .*common alert schema"):
        with_body("metric_fired", lambda b: b.update(schemaId="Microsoft.Insights/activityLogs"))


def test_an_unknown_monitor_condition_names_the_field() -> None:
    with pytest.raises(MappingError, match=r"^data\.essentials\.monitorCondition: unknown"):
        with_body("metric_fired", lambda b: b["data"]["essentials"].update(
            monitorCondition="Acknowledged"))


def test_the_activity_logs_caller_never_reaches_a_signal() -> None:
    """The draft names systems, never people: an activity log alert's caller is one."""
    def activity(body: dict[str, Any]) -> None:
        body["data"]["alertContext"] = {"caller": "mira.kovacs@example.com",
                                        "claims": "{}", "operationName": "restart"}
    text = orjson.dumps([s.to_json() for s in with_body("metric_fired", activity)]).decode()
    assert "mira.kovacs" not in text


# --- authentication through the real server -------------------------------------------

async def test_the_token_in_the_webhook_url_is_accepted(client: Any) -> None:
    body = load_fixture("azure-monitor", "metric_fired").body
    response = await client.post(f"/v1/webhooks/azure-monitor?token={TOKENS['azure-monitor']}",
                                 data=body, headers=JSON)
    assert response.status == 202
    [signal] = (await response.json())["signals"]
    assert signal["subject"] == METRIC


async def test_basic_auth_with_the_token_as_password_is_accepted(client: Any) -> None:
    """action-groups.md: "To use basic authentication, you must pass your credentials
    through the URI" (``https://user:<token>@…``, sent as Basic auth)."""
    body = load_fixture("azure-monitor", "metric_fired").body
    basic = base64.b64encode(f"azure:{TOKENS['azure-monitor']}".encode()).decode()
    response = await client.post("/v1/webhooks/azure-monitor", data=body,
                                 headers={**JSON, "Authorization": f"Basic {basic}"})
    assert response.status == 202


@pytest.mark.parametrize("query", ["?token=wrong-token-0123456789", ""])
async def test_a_wrong_or_missing_token_is_refused(client: Any, query: str) -> None:
    body = load_fixture("azure-monitor", "metric_fired").body
    response = await client.post(f"/v1/webhooks/azure-monitor{query}", data=body, headers=JSON)
    assert response.status == 401


async def test_a_retried_webhook_is_a_duplicate_stored_once(client: Any) -> None:
    """The action group retries a failed call (5, 20, 5, 40, 5 s apart): the same bytes
    within the dedup window are one delivery."""
    body = load_fixture("azure-monitor", "metric_fired").body
    url = f"/v1/webhooks/azure-monitor?token={TOKENS['azure-monitor']}"
    first = await client.post(url, data=body, headers=JSON)
    again = await client.post(url, data=body, headers=JSON)
    assert (first.status, again.status) == (202, 200)
    assert (await again.json())["duplicate"] is True
