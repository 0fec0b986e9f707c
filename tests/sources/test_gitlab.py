"""GitLab: deployment events and failed pipelines become deploy signals."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.delivery import Delivery, MappingError
from ingest.signals import Link, Signal
from ingest.sources import gitlab
from tests.fixtures import fixture_names, load_fixture
from tests.sources.folding import fold

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


def without_environments(name: str) -> Delivery:
    """The pipeline of ``name`` as if no job deployed anywhere (a test job failed)."""
    fixture = load_fixture("gitlab", name)
    body = orjson.loads(fixture.body)
    body["builds"] = [b | {"environment": None} for b in body["builds"]]
    return Delivery(source="gitlab", body=orjson.dumps(body), received_at=fixture.received_at,
                    headers=fixture.delivery().headers)


def test_a_failed_pipeline_with_no_deploy_job_is_a_failure_of_the_projects_pipeline_on_its_ref(
) -> None:
    [signal] = gitlab.parse(without_environments("pipeline_failed"))
    assert signal.subject == "platform/payments-api/pipeline@main"
    assert signal.service == "platform/payments-api"
    assert "environment" not in signal.attribute_map


def test_a_successful_pipeline_is_a_pipeline_success_of_its_ref() -> None:
    [signal] = parse("pipeline_success")
    assert (signal.subject, signal.state, signal.action) == (
        "platform/payments-api/pipeline@main", "info", "pipeline_succeeded")
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 12, 32, tzinfo=UTC)


def test_a_later_green_pipeline_on_the_ref_ends_a_failed_pipelines_risk() -> None:
    """Issue 10 (8), for GitLab: a pipeline failure outside any deploy job had subject
    ``path``, which nothing else had, so it was a risk forever. TIMELINE.md rule 7."""
    failed = fold(without_environments("pipeline_failed"))
    cleared = fold(without_environments("pipeline_failed"), ("gitlab", "pipeline_success"))

    assert [r.subject for r in failed.risks("platform/payments-api")] == [
        "platform/payments-api/pipeline@main"]
    assert cleared.risks("platform/payments-api") == ()


def test_a_later_successful_deployment_ends_a_failed_deploy_jobs_risk() -> None:
    """A pipeline that failed deploying to production is a risk of
    ``<path>/production`` until a deployment there succeeds (TIMELINE.md rule 7)."""
    failed = fold(("gitlab", "pipeline_failed"))
    cleared = fold(("gitlab", "pipeline_failed"), ("gitlab", "deployment_success"))

    service = "platform/payments-api/production"
    assert [r.subject for r in failed.risks(service)] == [service]
    assert cleared.risks(service) == ()


@pytest.mark.parametrize("status", ["running", "pending", "canceled", "skipped", "manual"])
def test_a_pipeline_that_neither_failed_nor_succeeded_maps_to_no_signal(status: str) -> None:
    fixture = load_fixture("gitlab", "pipeline_failed")
    attrs = orjson.loads(fixture.body)["object_attributes"] | {"status": status}
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
