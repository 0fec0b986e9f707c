"""GitHub: deployment statuses and failed workflow runs become deploy signals."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import urlencode

import orjson
import pytest

from ingest.auth import Credentials, Request, authenticate
from ingest.delivery import BodyError, Delivery, MappingError, keep_headers
from ingest.signals import Link, Signal
from ingest.sources import github
from projections.engine.fold import EngineConfig
from tests.fixtures import fixture_names, load_fixture
from tests.sources.folding import fold

CI_MAIN = "acme/checkout-service/.github/workflows/ci.yml@main"

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


def test_a_failed_workflow_run_is_a_pipeline_failure_of_its_workflow_on_its_branch() -> None:
    [signal] = parse("workflow_run_failure")
    assert signal.kind == "deploy"
    assert signal.subject == CI_MAIN
    assert signal.service == "acme/checkout-service"
    assert (signal.state, signal.action) == ("failing", "pipeline_failed")
    assert signal.occurred_at == datetime(2025, 3, 14, 9, 47, 29, tzinfo=UTC)
    assert signal.summary == 'Workflow "ci" on main failed at 4f2c9e1'
    assert "environment" not in signal.attribute_map
    assert signal.attribute_map["workflow"] == "ci"
    assert signal.attribute_map["workflow_path"] == ".github/workflows/ci.yml"
    assert signal.links == (
        Link("https://github.com/acme/checkout-service/actions/runs/289782451", "Workflow run"),
    )


def test_a_successful_workflow_run_is_a_pipeline_success_of_the_same_subject() -> None:
    [signal] = parse("workflow_run_success")
    assert (signal.subject, signal.state, signal.action) == (
        CI_MAIN, "info", "pipeline_succeeded")
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 12, 38, tzinfo=UTC)
    assert signal.summary == 'Workflow "ci" on main succeeded at 9a0be77'


def test_a_later_successful_run_of_the_workflow_ends_the_failed_runs_risk() -> None:
    """Issue 10 (8): a failed run was a risk forever, since runs had subject ``repo`` and
    nothing else did. TIMELINE.md rule 7: a failed pipeline is a risk of its service
    until a later run of the same subject succeeds."""
    failed = fold(("github", "workflow_run_failure"))
    cleared = fold(("github", "workflow_run_failure"), ("github", "workflow_run_success"))

    assert [(r.subject, r.kind) for r in failed.risks("acme/checkout-service")] == [
        (CI_MAIN, "deploy")]
    assert cleared.risks("acme/checkout-service") == ()


def test_a_success_on_another_branch_leaves_the_failure_a_risk() -> None:
    """GitHub reports a workflow's status per branch (status badge ``?branch=``): green
    on a feature branch says nothing of main."""
    fixture = load_fixture("github", "workflow_run_success")
    body = orjson.loads(fixture.body)
    body["workflow_run"]["head_branch"] = "feature/pool-size"
    other = _delivery(fixture.delivery(), body)

    engine = fold(("github", "workflow_run_failure"), other)

    assert [r.subject for r in engine.risks("acme/checkout-service")] == [CI_MAIN]


def test_a_green_run_is_no_deploy_on_an_incidents_timeline() -> None:
    """TIMELINE.md rule 7 lists deploy events (started, succeeded, failed, pipeline
    failed); a successful CI run changed nothing in the running system."""
    config = EngineConfig(services={"checkout": ["acme/checkout-service*"]})
    engine = fold(("github", "workflow_run_failure"), ("alertmanager", "firing"),
                  ("github", "workflow_run_success"), config=config)

    (incident,) = engine.incidents()
    deploys = [e for e in incident.timeline if e.kind == "deploy"]
    assert [(e.action, e.at) for e in deploys] == [
        ("pipeline_failed", datetime(2025, 3, 14, 9, 47, 29, tzinfo=UTC))]


@pytest.mark.parametrize("name", ["ping", "push"])
def test_a_ping_or_an_unrelated_event_maps_to_no_signal(name: str) -> None:
    assert parse(name) == []


@pytest.mark.parametrize("state", ["queued", "waiting", "inactive"])
def test_statuses_that_are_not_outcomes_map_to_no_signal(state: str) -> None:
    assert _with_status(state) == []


def test_an_error_status_is_a_failed_deploy() -> None:
    [signal] = _with_status("error")
    assert (signal.state, signal.action) == ("failing", "failed")


@pytest.mark.parametrize("conclusion", ["cancelled", "skipped", "neutral", "action_required"])
def test_a_run_that_neither_failed_nor_succeeded_maps_to_no_signal(conclusion: str) -> None:
    fixture = load_fixture("github", "workflow_run_failure")
    body = orjson.loads(fixture.body)
    body["workflow_run"]["conclusion"] = conclusion
    assert github.parse(_delivery(fixture.delivery(), body)) == []


def form_delivery(name: str) -> tuple[bytes, dict[str, str], Delivery]:
    """The fixture as a webhook set to content type ``application/x-www-form-urlencoded``
    sends it: ``payload=<the JSON, URL-encoded>`` (docs.github.com "Creating webhooks":
    "Content type ... application/x-www-form-urlencoded will send the JSON payload as a
    form parameter called payload"), signed over those raw bytes (X-Hub-Signature-256,
    docs "Validating webhook deliveries")."""
    fixture = load_fixture("github", name)
    body = urlencode({"payload": fixture.body.decode()}).encode()
    secret = "It's a Secret to Everybody"
    headers = {**fixture.headers, "Content-Type": "application/x-www-form-urlencoded",
               "X-Hub-Signature-256": "sha256=" + hmac.new(
                   secret.encode(), body, hashlib.sha256).hexdigest()}
    return body, headers, Delivery(source="github", body=body, received_at=fixture.received_at,
                                   headers=keep_headers(headers))


@pytest.mark.parametrize("name", ["deployment_status_failure", "workflow_run_failure"])
def test_a_form_encoded_webhook_is_authentic_and_says_what_its_json_says(name: str) -> None:
    """Issue 10 (10): such webhooks were answered 400."""
    body, headers, delivery = form_delivery(name)
    request = Request(body, {k.lower(): v for k, v in headers.items()}, {},
                      delivery.received_at)

    assert authenticate("github", request, Credentials(secrets=("It's a Secret to Everybody",)),
                        300) is None
    assert github.parse(delivery) == parse(name)


def test_a_form_body_without_a_json_payload_is_a_body_error() -> None:
    for body in (b"payload=%7B", b"other=1"):
        delivery = Delivery(source="github", body=body, received_at=datetime(2025, 1, 1, tzinfo=UTC),
                            headers={"x-github-event": "deployment_status",
                                     "content-type": "application/x-www-form-urlencoded"})
        with pytest.raises(BodyError):
            github.parse(delivery)


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
