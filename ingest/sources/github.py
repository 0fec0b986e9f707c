"""GitHub repository or organization webhooks: deploys and failed workflow runs.

Documented at https://docs.github.com/en/webhooks/webhook-events-and-payloads (payload
examples in octokit/webhooks ``payload-examples/api.github.com``). The event name is the
``X-GitHub-Event`` header; the body never repeats it.

- ``deployment_status`` (subscribe to "Deployment statuses"): ``success`` → deploy
  ``succeeded``; ``failure`` and ``error`` → ``failed``; ``in_progress`` and ``pending``
  (what tools used before ``in_progress`` existed) → ``started``. ``queued``, ``waiting``
  and ``inactive`` (a newer deployment superseded this one) say nothing about the
  running system and map to no signal. ``occurred_at`` is the status's ``updated_at``.
- ``deployment`` (a request to deploy) maps to no signal: its statuses follow as
  ``deployment_status`` and say when it started and how it ended, so mapping both would
  list every start twice.
- ``workflow_run`` ``completed`` with conclusion ``failure``, ``timed_out`` or
  ``startup_failure`` → ``pipeline_failed``, at the run's ``updated_at``; with conclusion
  ``success`` → ``pipeline_succeeded`` (not listed on timelines: it only ends the risk
  a failed run of the same workflow and branch left, TIMELINE.md rule 7). Other
  conclusions (cancelled, skipped, neutral...) say nothing and map to no signal.
- ``ping`` (sent when the webhook is created) and every other event (push, issues,
  star, check_suite, check_run...) → no signal, answered 202.

Subject: ``<owner>/<repo>/<environment>`` (TIMELINE.md: the repository and environment).
A workflow run names no environment; its subject is the workflow on its branch,
``<owner>/<repo>/<workflow path>@<branch>`` (``acme/shop/.github/workflows/ci.yml@main``):
GitHub itself reports a workflow's status per workflow file and branch (the status badge
``/actions/workflows/<file>/badge.svg?branch=<branch>``, docs "Adding a workflow status
badge"; the run list filter ``branch:``), so a success on ``main`` ends a failure on
``main``, while a failure on ``release/1.2`` or on a pull request's branch stays until that
branch runs green. The path (``workflow_run.path``) is the workflow's identity; its
``name`` may change. Its service hint is the repository.

Attributes: ``ref`` (7-digit sha), ``sha``, ``environment``, ``status``, ``git_ref`` (the
branch or tag), and ``workflow`` and ``workflow_path`` for runs. The status
``description``, creators, senders and commit authors are never read: the draft names
systems, not people (a free-text description is where "deployed by …" would hide).
"""

from __future__ import annotations

from typing import Any

import orjson

from ingest.delivery import BodyError, Delivery, MappingError
from ingest.signals import Link, Signal
from ingest.sources._common import (
    DeployAction,
    deploy_signal,
    optional,
    parse_time,
    require,
    short_sha,
)

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

_STATUS_ACTIONS: dict[str, DeployAction | None] = {
    "success": "succeeded",
    "failure": "failed",
    "error": "failed",
    "in_progress": "started",
    "pending": "started",
    "queued": None,
    "waiting": None,
    "inactive": None,
}
_FAILED_CONCLUSIONS = frozenset({"failure", "timed_out", "startup_failure"})


def parse(delivery: Delivery) -> list[Signal]:
    event = delivery.header("X-GitHub-Event")
    body = _body(delivery)
    if not event:
        raise MappingError("X-GitHub-Event header: missing")
    if not isinstance(body, dict):
        raise MappingError("body: expected an object")
    if event == "deployment_status":
        return _deployment_status(delivery, body)
    if event == "workflow_run":
        return _workflow_run(delivery, body)
    return []  # ping, deployment, push, issues...: nothing for the timeline


def _body(delivery: Delivery) -> Any:
    """The event's JSON. A webhook whose content type is
    ``application/x-www-form-urlencoded`` sends it as the ``payload`` form field (docs
    "Webhook events and payloads", "Delivery headers" / content types); the signature was
    checked over the raw form body (docs "Validating webhook deliveries")."""
    if delivery.content_type != "application/x-www-form-urlencoded":
        return delivery.json()
    payload = delivery.form().get("payload")
    if payload is None:
        raise BodyError("form body has no payload field")
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"payload field is not valid JSON: {exc.args[0]}") from None


def _deployment_status(delivery: Delivery, body: dict[str, Any]) -> list[Signal]:
    status = require(body, "deployment_status", dict)
    deployment = require(body, "deployment", dict)
    repo = require(require(body, "repository", dict), "full_name", str, "repository")
    state = require(status, "state", str, "deployment_status")
    if state not in _STATUS_ACTIONS:
        raise MappingError(f"deployment_status.state: unknown state {state[:40]!r}")
    action = _STATUS_ACTIONS[state]
    if action is None:
        return []
    environment = (
        optional(status, "environment", str, "deployment_status")
        or require(deployment, "environment", str, "deployment")
    )
    sha = optional(deployment, "sha", str, "deployment")
    occurred = parse_time(status.get("updated_at")) or parse_time(status.get("created_at"))
    links = []
    log_url = status.get("log_url") or status.get("target_url")
    if isinstance(log_url, str) and log_url:
        links.append(Link(url=log_url, title="Deployment log"))
    environment_url = status.get("environment_url")
    if isinstance(environment_url, str) and environment_url:
        links.append(Link(url=environment_url, title=environment))
    return [
        deploy_signal(
            delivery,
            subject=f"{repo}/{environment}",
            action=action,
            occurred_at=occurred,
            environment=environment,
            sha=sha,
            ref=short_sha(sha),
            status=state,
            links=links,
            extra={"git_ref": optional(deployment, "ref", str, "deployment")},
        )
    ]


def _workflow_run(delivery: Delivery, body: dict[str, Any]) -> list[Signal]:
    if body.get("action") != "completed":
        return []
    run = require(body, "workflow_run", dict)
    conclusion = optional(run, "conclusion", str, "workflow_run")
    action: DeployAction
    if conclusion in _FAILED_CONCLUSIONS:
        action = "pipeline_failed"
    elif conclusion == "success":
        action = "pipeline_succeeded"
    else:
        return []
    repo = require(require(body, "repository", dict), "full_name", str, "repository")
    workflow = optional(body.get("workflow"), "name", str, "workflow") or optional(
        run, "name", str, "workflow_run"
    )
    path = (optional(run, "path", str, "workflow_run")
            or optional(body.get("workflow"), "path", str, "workflow"))
    workflow_id = run.get("workflow_id")
    identity = path or (str(workflow_id) if workflow_id is not None else workflow)
    if not identity:
        raise MappingError("workflow_run.path: missing, and no workflow_id or name")
    branch = optional(run, "head_branch", str, "workflow_run")
    sha = optional(run, "head_sha", str, "workflow_run")
    what = f'Workflow "{workflow}"' if workflow else "Workflow"
    if branch:
        what += f" on {branch}"
    html_url = optional(run, "html_url", str, "workflow_run")
    return [
        deploy_signal(
            delivery,
            subject=f"{repo}/{identity}" + (f"@{branch}" if branch else ""),
            action=action,
            occurred_at=parse_time(run.get("updated_at")),
            environment=None,
            sha=sha,
            ref=short_sha(sha),
            status=conclusion or "",
            what=what,
            links=[Link(url=html_url, title="Workflow run")] if html_url else [],
            extra={"git_ref": branch, "workflow": workflow, "workflow_path": path},
            service=repo,
        )
    ]
