"""GitHub: deployment statuses and failed workflow runs become deploy signals."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.delivery import BodyError, Delivery, MappingError
from ingest.signals import Link, Signal
from ingest.sources import github
from tests.fixtures import fixture_names, load_fixture

PEOPLE = ("mkovacs-dev", "Mira Kovacs", "mira.kovacs")


def parse(name: str) -> list[Signal]:
    return github.parse(load_fixture("github", name).delivery())


def blob(signals: list[Signal]) -> str:
    return orjson.dumps([s.to_json() for s in signals]).decode()


def test_a_failed_deployment_status_is_a_failing_deploy_with_its_ref() -> None:
    [signal] = parse("deployment_status_failure")
    assert signal.source == "github"
    assert signal.kind == "deploy"
    assert signal.subject == "acme/checkout-service/production"
    assert signal.state == "failing"
    assert signal.action == "failed"
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 2, 38, tzinfo=UTC)
    assert signal.notified_at == datetime(2025, 3, 14, 10, 2, 40, 118000, tzinfo=UTC)
    assert signal.time_source == "source"
    assert signal.severity is None
    assert signal.service is None
    assert signal.summary == "Deployment of 4f2c9e1 to production failed"
    assert signal.attribute_map == {
        "ref": "4f2c9e1",
        "sha": "4f2c9e1b7d3a5c8e0f1a2b3c4d5e6f7081920a3b",
        "environment": "production",
        "status": "failure",
        "git_ref": "main",
    }
    assert signal.links == (
        Link("https://github.com/acme/checkout-service/actions/runs/299880363", "Deployment log"),
        Link("https://checkout.example.com", "production"),
    )


def test_a_successful_deployment_status_is_an_info_deploy_that_succeeded() -> None:
    [signal] = parse("deployment_status_success")
    assert (signal.subject, signal.state, signal.action) == (
        "acme/checkout-service/production",
        "info",
        "succeeded",
    )
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 31, 5, tzinfo=UTC)
    assert signal.attribute_map["ref"] == "9a0be77"
    assert signal.summary == "Deployment of 9a0be77 to production succeeded"


def test_an_in_progress_deployment_status_is_a_deploy_that_started() -> None:
    [signal] = parse("deployment_status_in_progress")
    assert (signal.state, signal.action) == ("info", "started")
    assert signal.occurred_at == datetime(2025, 3, 14, 9, 58, 13, tzinfo=UTC)


def test_a_failed_workflow_run_is_a_pipeline_failure_of_the_repository() -> None:
    [signal] = parse("workflow_run_failure")
    assert signal.kind == "deploy"
    assert signal.subject == "acme/checkout-service"
    assert (signal.state, signal.action) == ("failing", "pipeline_failed")
    assert signal.occurred_at == datetime(2025, 3, 14, 9, 47, 29, tzinfo=UTC)
    assert signal.summary == 'Workflow "ci" on main failed at 4f2c9e1'
    assert "environment" not in signal.attribute_map
    assert signal.attribute_map["workflow"] == "ci"
    assert signal.links == (
        Link("https://github.com/acme/checkout-service/actions/runs/289782451", "Workflow run"),
    )


@pytest.mark.parametrize("name", ["ping", "push"])
def test_a_ping_or_an_unrelated_event_maps_to_no_signal(name: str) -> None:
    assert parse(name) == []


@pytest.mark.parametrize("state", ["queued", "waiting", "inactive"])
def test_statuses_that_are_not_outcomes_map_to_no_signal(state: str) -> None:
    assert _with_status(state) == []


def test_an_error_status_is_a_failed_deploy() -> None:
    [signal] = _with_status("error")
    assert (signal.state, signal.action) == ("failing", "failed")


def test_a_successful_workflow_run_is_not_a_deploy() -> None:
    fixture = load_fixture("github", "workflow_run_failure")
    body = orjson.loads(fixture.body)
    body["workflow_run"]["conclusion"] = "success"
    assert github.parse(_delivery(fixture.delivery(), body)) == []


def test_no_username_from_any_fixture_reaches_a_signal() -> None:
    for name in fixture_names("github"):
        text = blob(parse(name))
        for person in PEOPLE:
            assert person not in text, (name, person)


def test_an_unknown_deployment_state_names_the_field() -> None:
    with pytest.raises(MappingError, match=r"^deployment_status\.state: unknown state 'exploded'$"):
        _with_status("exploded")


def test_a_delivery_without_its_event_header_cannot_be_mapped() -> None:
    delivery = Delivery(source="github", body=b"{}", received_at=datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(MappingError, match=r"^X-GitHub-Event header: missing$"):
        github.parse(delivery)


def test_a_body_that_is_not_json_is_a_body_error() -> None:
    delivery = Delivery(
        source="github",
        body=b"payload=%7B",
        received_at=datetime(2025, 1, 1, tzinfo=UTC),
        headers={"x-github-event": "deployment_status"},
    )
    with pytest.raises(BodyError):
        github.parse(delivery)


def _delivery(template: Delivery, body: object) -> Delivery:
    return Delivery(
        source="github",
        body=orjson.dumps(body),
        received_at=template.received_at,
        headers=template.headers,
    )


def _with_status(state: str) -> list[Signal]:
    fixture = load_fixture("github", "deployment_status_failure")
    body = orjson.loads(fixture.body)
    body["deployment_status"]["state"] = state
    return github.parse(_delivery(fixture.delivery(), body))
