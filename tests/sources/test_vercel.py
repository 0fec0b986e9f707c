"""Vercel: deployment webhooks become deploy signals (TIMELINE.md rule 7), signed with
``x-vercel-signature`` (vercel.com/docs/webhooks/webhooks-api, "Securing webhooks")."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from ingest.delivery import Delivery, MappingError
from ingest.signals import Link, Signal
from ingest.sources import vercel
from ingest.webhooks import delivery_id
from tests.fixtures import fixture_names, load_fixture
from tests.helpers import SECRETS, signed_headers
from tests.sources.folding import fold

PRODUCTION = "checkout-web/production"
JSON = {"Content-Type": "application/json"}
PEOPLE = ("Mira Kovacs", "mkovacs-dev", "usr_k1l2m3n4o5p6q7r8")


def parse(name: str) -> list[Signal]:
    return vercel.parse(load_fixture("vercel", name).delivery())


def with_body(name: str, change: Any) -> list[Signal]:
    fixture = load_fixture("vercel", name)
    body = orjson.loads(fixture.body)
    change(body)
    return vercel.parse(Delivery("vercel", orjson.dumps(body), fixture.received_at,
                                 fixture.delivery().headers))


def test_a_created_deployment_is_a_deploy_that_started_at_the_events_time() -> None:
    """createdAt: "the date and time the webhook event was generated", JavaScript ms."""
    [signal] = parse("deployment_created")
    assert (signal.source, signal.kind, signal.subject) == ("vercel", "deploy", PRODUCTION)
    assert (signal.state, signal.action) == ("info", "started")
    assert signal.occurred_at == datetime(2025, 3, 14, 9, 58, 11, 482000, tzinfo=UTC)
    assert signal.notified_at == datetime(2025, 3, 14, 9, 58, 12, 130000, tzinfo=UTC)
    assert signal.time_source == "source"
    assert signal.summary == "Deployment of 4f2c9e1 to production started"
    assert signal.attribute_map == {
        "ref": "4f2c9e1", "sha": "4f2c9e1b7d3a5c8e0f1a2b3c4d5e6f7081920a3b",
        "environment": "production", "status": "deployment.created", "git_ref": "main",
        "deployment_id": "dpl_8XbkPZ2mLq4nVtY7wRs3HjD9cEfA",
        "project_id": "prj_12HKQaOmR5t5Uy6vdcQsNIiZgHGB"}
    assert signal.links == (
        Link("https://vercel.com/acme/checkout-web/8XbkPZ2mLq4nVtY7wRs3HjD9cEfA", "Deployment"),
        Link("https://checkout-web-8xbkpz2ml-acme.vercel.app", "production"))


def test_an_errored_deployment_is_a_failed_deploy() -> None:
    [signal] = parse("deployment_error")
    assert (signal.subject, signal.state, signal.action) == (PRODUCTION, "failing", "failed")
    assert signal.summary == "Deployment of 4f2c9e1 to production failed"


def test_a_succeeded_deployment_and_its_promotion_are_successes_of_production() -> None:
    """deployment.promoted: the deployment starts serving production traffic; the docs
    list no target for it, production is its target by definition."""
    [built] = parse("deployment_succeeded")
    [promoted] = parse("deployment_promoted")
    assert (built.subject, built.action) == (PRODUCTION, "succeeded")
    assert (promoted.subject, promoted.state, promoted.action) == (
        PRODUCTION, "info", "succeeded")
    assert promoted.summary == "Promotion of 9a0be77 to production succeeded"


def test_a_later_success_of_the_same_target_ends_the_failed_deploys_risk() -> None:
    """TIMELINE.md rule 7: a failed deploy is a risk of its service until a later deploy
    of the same subject succeeds."""
    failed = fold(("vercel", "deployment_error"))
    cleared = fold(("vercel", "deployment_error"), ("vercel", "deployment_succeeded"))
    assert [(r.subject, r.kind) for r in failed.risks(PRODUCTION)] == [(PRODUCTION, "deploy")]
    assert cleared.risks(PRODUCTION) == ()


def test_a_deploy_never_opens_an_incident() -> None:
    """TIMELINE.md rule 7: deploys are changes."""
    assert fold(("vercel", "deployment_error")).incidents() == []


def test_a_preview_is_its_branchs_own_subject() -> None:
    """A deployment with target null is a preview; Vercel gives each branch its own
    preview, so a failed preview is a risk of that branch only."""
    [signal] = parse("preview_error")
    assert signal.subject == "checkout-web/preview@feature/pool-size"
    assert signal.attribute_map["environment"] == "preview"
    other = fold(("vercel", "preview_error"), ("vercel", "deployment_succeeded"))
    assert [r.subject for r in other.risks("checkout-web/preview@feature/pool-size")] == [
        "checkout-web/preview@feature/pool-size"]


@pytest.mark.parametrize("name", ["deployment_canceled", "project_created"])
def test_a_canceled_deployment_or_an_untracked_event_maps_to_no_signal(name: str) -> None:
    assert parse(name) == []


def test_ready_maps_to_no_signal_since_succeeded_follows_it() -> None:
    """deployment.ready replaced the legacy deployment-prepared (built, before Checks);
    deployment.succeeded replaced deployment-ready: one success, listed once."""
    assert with_body("deployment_succeeded", lambda b: b.update(type="deployment.ready")) == []


@pytest.mark.parametrize(("legacy", "action"), [
    ("deployment", "started"), ("deployment-ready", "succeeded"),
    ("deployment-error", "failed")])
def test_legacy_event_types_read_as_their_replacements(legacy: str, action: str) -> None:
    """webhooks-api "Legacy Event Types": still delivered to existing webhooks, with
    ``payload.projectId`` instead of ``payload.project.id``."""
    def legacy_body(body: dict[str, Any]) -> None:
        body["type"] = legacy
        body["payload"]["projectId"] = body["payload"].pop("project")["id"]

    [signal] = with_body("deployment_created", legacy_body)
    assert (signal.subject, signal.action) == (PRODUCTION, action)
    assert signal.attribute_map["project_id"] == "prj_12HKQaOmR5t5Uy6vdcQsNIiZgHGB"


def test_without_createdat_the_receipt_is_the_time_and_says_so() -> None:
    [signal] = with_body("deployment_error", lambda b: b.pop("createdAt"))
    assert signal.occurred_at == load_fixture("vercel", "deployment_error").received_at
    assert signal.time_source == "receipt"


def test_no_commit_author_message_or_user_reaches_a_signal() -> None:
    """The draft names systems, never people (TIMELINE.md, postmortem draft)."""
    for name in fixture_names("vercel"):
        text = orjson.dumps([s.to_json() for s in parse(name)]).decode()
        for person in (*PEOPLE, "Raise the pool size"):
            assert person not in text, (name, person)


def test_a_deployment_event_without_its_project_name_names_the_field() -> None:
    with pytest.raises(MappingError, match=r"^payload\.deployment\.name: missing$"):
        with_body("deployment_error", lambda b: b["payload"]["deployment"].pop("name"))


def test_the_event_id_is_the_delivery_id_kept_by_retries() -> None:
    """vercel.com/docs/webhooks "Events": ``"id": <eventId>``; a retry (webhooks-api
    "Delivery Attempts and Retries") is the same event: the same key, not windowed."""
    fixture = load_fixture("vercel", "deployment_error")
    assert delivery_id("vercel", {}, fixture.body) == (
        "vercel:id:Qm7TfV2cX9pL4sK8dJ1nR6hW", False)


# --- authentication through the real server -------------------------------------------

def _headers(body: bytes, secret: str) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return {"Content-Type": "application/json", "x-vercel-signature": signature}


async def test_a_delivery_signed_with_the_webhooks_secret_is_accepted(client: Any) -> None:
    body = load_fixture("vercel", "deployment_error").body
    response = await client.post("/v1/webhooks/vercel", data=body,
                                 headers=signed_headers("vercel", body, JSON))
    assert response.status == 202
    [signal] = (await response.json())["signals"]
    assert (signal["subject"], signal["action"]) == (PRODUCTION, "failed")


@pytest.mark.parametrize("secret", ["another-secret-0123456789", None])
async def test_a_forged_or_missing_signature_is_refused(client: Any, secret: str | None) -> None:
    body = load_fixture("vercel", "deployment_error").body
    headers = _headers(body, secret) if secret else {"Content-Type": "application/json"}
    response = await client.post("/v1/webhooks/vercel", data=body, headers=headers)
    assert response.status == 401


async def test_a_signature_lifted_onto_another_body_is_refused(client: Any) -> None:
    signed = load_fixture("vercel", "deployment_succeeded").body
    other = load_fixture("vercel", "deployment_error").body
    response = await client.post("/v1/webhooks/vercel", data=other,
                                 headers=_headers(signed, SECRETS["vercel"]))
    assert response.status == 401


async def test_a_replayed_delivery_is_a_duplicate_stored_once(client: Any) -> None:
    """Vercel signs no timestamp: a captured delivery replayed later is refused as new
    only by its event id (the guide says so)."""
    body = load_fixture("vercel", "deployment_error").body
    headers = signed_headers("vercel", body, JSON)
    first = await client.post("/v1/webhooks/vercel", data=body, headers=headers)
    again = await client.post("/v1/webhooks/vercel", data=body, headers=headers)
    assert (first.status, again.status) == (202, 200)
    assert (await again.json())["duplicate"] is True
