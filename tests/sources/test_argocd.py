"""Argo CD notifications: syncs are deploys of the application; its health is an alert."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.delivery import Delivery, MappingError
from ingest.signals import Link, Signal
from ingest.sources import argocd
from tests.fixtures import load_fixture

APP_LINK = Link(
    "https://argocd.acme.example/applications/checkout-prod", "Argo CD application checkout-prod"
)
RECEIVED = datetime(2025, 3, 14, 12, tzinfo=UTC)


def parse(name: str) -> list[Signal]:
    return argocd.parse(load_fixture("argocd", name).delivery())


def parse_body(body: object) -> list[Signal]:
    return argocd.parse(Delivery(source="argocd", body=orjson.dumps(body), received_at=RECEIVED))


def template(name: str, **change: object) -> list[Signal]:
    return parse_body(orjson.loads(load_fixture("argocd", name).body) | change)


def test_a_degraded_application_is_a_failing_alert_of_the_app() -> None:
    [signal] = parse("health_degraded")
    assert signal.source == "argocd"
    assert signal.kind == "alert"
    assert signal.subject == "checkout-prod"
    assert signal.state == "failing"
    assert signal.action is None
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 6, 10, tzinfo=UTC)
    assert signal.notified_at == datetime(2025, 3, 14, 10, 6, 12, 20000, tzinfo=UTC)
    assert signal.summary == "Argo CD application checkout-prod is Degraded"
    assert signal.links == (APP_LINK,)
    assert signal.attribute_map == {
        "environment": "production",
        "health_status": "Degraded",
        "sync_status": "Synced",
        "revision": "8d2c6f0e4b1a3957c2e8d0f6a4b2c1e3d5f7a9b0",
    }


def test_a_deploy_that_ends_healthy_is_a_succeeded_deploy_then_the_app_ok() -> None:
    deploy, health = parse("deployed_healthy")
    assert deploy.kind == "deploy"
    assert (deploy.subject, deploy.state, deploy.action) == ("checkout-prod", "info", "succeeded")
    assert deploy.occurred_at == datetime(2025, 3, 14, 10, 28, 40, tzinfo=UTC)
    assert deploy.summary == "Deployment of b1e7c3d to production succeeded"
    assert deploy.attribute_map == {
        "ref": "b1e7c3d",
        "sha": "b1e7c3d9f5a20486e1c3b5d7f9a0c2e4b6d8f0a1",
        "environment": "production",
        "status": "Succeeded",
        "sync_status": "Synced",
        "health_status": "Healthy",
        "repo": "https://github.com/acme/checkout-deploy.git",
    }
    assert (health.kind, health.subject, health.state) == ("alert", "checkout-prod", "ok")
    assert health.occurred_at == datetime(2025, 3, 14, 10, 29, 45, tzinfo=UTC)


def test_a_failed_sync_is_a_failed_deploy_at_its_finish() -> None:
    [signal] = parse("sync_failed")
    assert (signal.kind, signal.state, signal.action) == ("deploy", "failing", "failed")
    assert signal.occurred_at == datetime(2025, 3, 14, 9, 31, 18, tzinfo=UTC)
    assert signal.attribute_map["status"] == "Failed"


def test_a_running_sync_started_at_its_start() -> None:
    [signal] = template(
        "sync_failed", trigger="on-sync-running", operation_phase="Running", finished_at=""
    )
    assert (signal.state, signal.action) == ("info", "started")
    assert signal.occurred_at == datetime(2025, 3, 14, 9, 30, 55, tzinfo=UTC)


def test_without_a_trigger_the_fields_decide() -> None:
    [degraded] = template("health_degraded", trigger="<no value>")
    assert (degraded.kind, degraded.state) == ("alert", "failing")
    [failed] = template("sync_failed", trigger="")
    assert (failed.kind, failed.action) == ("deploy", "failed")


def test_the_environment_falls_back_to_the_destination_namespace() -> None:
    [signal] = template("sync_failed", environment="<no value>")
    assert signal.attribute_map["environment"] == "checkout"
    assert signal.summary == "Deployment of 8d2c6f0 to checkout failed"


def test_a_chart_version_revision_is_kept_whole_and_is_no_sha() -> None:
    [signal] = template("sync_failed", revision="4.12.0")
    assert signal.attribute_map["ref"] == "4.12.0"
    assert "sha" not in signal.attribute_map


def test_the_documented_slack_style_body_is_a_deploy_timed_at_receipt() -> None:
    [signal] = parse("slack_style_sync_succeeded")
    received = datetime(2025, 3, 14, 10, 28, 41, 300000, tzinfo=UTC)
    assert (signal.kind, signal.subject, signal.action) == ("deploy", "checkout-prod", "succeeded")
    assert signal.occurred_at == received
    assert signal.time_source == "receipt"
    assert signal.links == (APP_LINK,)
    assert signal.attribute_map["repo"] == "https://github.com/acme/checkout-deploy.git"


def test_the_documented_commit_status_body_names_the_app_from_its_context() -> None:
    [signal] = parse_body(
        {
            "state": "error",
            "description": "ArgoCD",
            "target_url": "https://argocd.acme.example/applications/checkout-prod",
            "context": "continuous-delivery/checkout-prod",
        }
    )
    assert (signal.subject, signal.state, signal.action) == ("checkout-prod", "failing", "failed")
    assert signal.time_source == "receipt"


@pytest.mark.parametrize("trigger", ["on-created", "on-deleted", "on-sync-status-unknown"])
def test_triggers_that_are_not_changes_map_to_no_signal(trigger: str) -> None:
    assert template("sync_failed", trigger=trigger) == []


def test_a_body_in_no_known_shape_points_to_the_template() -> None:
    with pytest.raises(MappingError, match=r"^app: missing \(see Hindsight's Argo CD template\)$"):
        parse_body({"text": "Application checkout-prod has degraded."})


def test_a_time_that_is_not_a_time_is_refused() -> None:
    with pytest.raises(MappingError, match=r"^not a time: 'yesterday'$"):
        template("sync_failed", finished_at="yesterday")
