"""GitLab: deployment events and failed pipelines become deploy signals."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.delivery import Delivery, MappingError
from ingest.signals import Link, Signal
from ingest.sources import gitlab
from tests.fixtures import fixture_names, load_fixture

PEOPLE = ("dpatel", "Deepa Patel", "deepa.patel")


def parse(name: str) -> list[Signal]:
    return gitlab.parse(load_fixture("gitlab", name).delivery())


def with_body(name: str, change: dict[str, object]) -> list[Signal]:
    fixture = load_fixture("gitlab", name)
    body = orjson.loads(fixture.body) | change
    delivery = fixture.delivery()
    return gitlab.parse(
        Delivery(
            source="gitlab",
            body=orjson.dumps(body),
            received_at=delivery.received_at,
            headers=delivery.headers,
        )
    )


def test_a_failed_deployment_is_a_failing_deploy_at_its_status_change() -> None:
    [signal] = parse("deployment_failed")
    assert signal.source == "gitlab"
    assert signal.kind == "deploy"
    assert signal.subject == "platform/payments-api/production"
    assert (signal.state, signal.action) == ("failing", "failed")
    # "2025-03-14 11:50:00 +0200" is 09:50:00 UTC
    assert signal.occurred_at == datetime(2025, 3, 14, 9, 50, tzinfo=UTC)
    assert signal.notified_at == datetime(2025, 3, 14, 9, 50, 2, 377000, tzinfo=UTC)
    assert signal.severity is None
    assert signal.summary == "Deployment of 279484c0 to production failed"
    assert signal.attribute_map == {
        "ref": "279484c0",
        "sha": "279484c09fbe69ededfced8c1bb6e6d24616b468",
        "environment": "production",
        "environment_tier": "production",
        "status": "failed",
        "deployment_id": "15",
    }
    assert signal.links == (
        Link("https://gitlab.acme.example/platform/payments-api/-/jobs/796", "Deployment job"),
        Link("https://payments.acme.example", "production"),
    )


def test_the_next_successful_deployment_succeeds_the_same_subject() -> None:
    [failed] = parse("deployment_failed")
    [succeeded] = parse("deployment_success")
    assert succeeded.subject == failed.subject
    assert (succeeded.state, succeeded.action) == ("info", "succeeded")
    assert succeeded.occurred_at == datetime(2025, 3, 14, 10, 12, 29, tzinfo=UTC)
    assert succeeded.attribute_map["ref"] == "5c1e0a9d"


def test_a_running_deployment_started() -> None:
    [signal] = parse("deployment_running")
    assert (signal.state, signal.action) == ("info", "started")
    assert signal.occurred_at == datetime(2025, 3, 14, 9, 46, 10, tzinfo=UTC)


def test_a_canceled_deployment_maps_to_no_signal() -> None:
    assert with_body("deployment_failed", {"status": "canceled"}) == []


def test_a_failed_pipeline_is_a_pipeline_failure_for_the_environment_its_job_deployed_to() -> None:
    [signal] = parse("pipeline_failed")
    assert signal.subject == "platform/payments-api/production"
    assert (signal.state, signal.action) == ("failing", "pipeline_failed")
    # finished_at "2025-03-14 09:26:29 UTC"
    assert signal.occurred_at == datetime(2025, 3, 14, 9, 26, 29, tzinfo=UTC)
    assert signal.summary == "Pipeline #31337 on main for production failed at 279484c0"
    assert signal.attribute_map == {
        "ref": "279484c0",
        "sha": "279484c09fbe69ededfced8c1bb6e6d24616b468",
        "environment": "production",
        "status": "failed",
        "git_ref": "main",
        "pipeline_id": "31337",
    }
    assert signal.links == (
        Link("https://gitlab.acme.example/platform/payments-api/-/pipelines/31337", "Pipeline"),
    )


def test_a_failed_pipeline_with_no_deploy_job_is_a_failure_of_the_project() -> None:
    fixture = load_fixture("gitlab", "pipeline_failed")
    body = orjson.loads(fixture.body)
    body["builds"] = [b | {"environment": None} for b in body["builds"]]
    [signal] = with_body("pipeline_failed", {"builds": body["builds"]})
    assert signal.subject == "platform/payments-api"
    assert "environment" not in signal.attribute_map


def test_a_successful_pipeline_maps_to_no_signal() -> None:
    fixture = load_fixture("gitlab", "pipeline_failed")
    attrs = orjson.loads(fixture.body)["object_attributes"] | {"status": "success"}
    assert with_body("pipeline_failed", {"object_attributes": attrs}) == []


def test_a_push_maps_to_no_signal() -> None:
    assert parse("push") == []


def test_no_username_from_any_fixture_reaches_a_signal() -> None:
    for name in fixture_names("gitlab"):
        text = orjson.dumps([s.to_json() for s in parse(name)]).decode()
        for person in PEOPLE:
            assert person not in text, (name, person)


def test_a_body_without_object_kind_names_the_field() -> None:
    with pytest.raises(MappingError, match=r"^object_kind: missing$"):
        gitlab.parse(
            Delivery(source="gitlab", body=b"{}", received_at=datetime(2025, 1, 1, tzinfo=UTC))
        )


def test_a_deployment_without_a_project_path_names_the_field() -> None:
    with pytest.raises(MappingError, match=r"^project\.path_with_namespace: missing$"):
        with_body("deployment_failed", {"project": {"id": 30}})
