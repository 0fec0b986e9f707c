"""GitLab project or group webhooks: deployment events and failed pipelines.

Documented at https://docs.gitlab.com/user/project/integrations/webhook_events/
("Deployment events", "Pipeline events"; gitlab-org/gitlab
``doc/user/project/integrations/webhook_events.md``). The body's ``object_kind`` says what
it is (the ``X-Gitlab-Event`` header repeats it as "Deployment Hook"/"Pipeline Hook").
"Test" deliveries from the webhook settings page have the same shape and map the same way.

- ``deployment``: ``running`` → deploy ``started``, ``success`` → ``succeeded``,
  ``failed`` → ``failed``, at ``status_changed_at`` ("2021-04-28 21:50:00 +0200").
  ``canceled`` maps to no signal: nothing changed and nothing failed. Subject
  ``<path_with_namespace>/<environment>``.
- ``pipeline`` with status ``failed`` → ``pipeline_failed`` at ``finished_at``
  ("2016-08-12 15:26:29 UTC"). Its environment is that of the first failed job that
  deploys to one (``builds[].environment.name``); then the subject is
  ``<path_with_namespace>/<environment>``, which a later successful deployment to that
  environment clears (TIMELINE.md rule 7). A failure in no deploy job is the project's
  pipeline on its ref, ``<path_with_namespace>/pipeline@<ref>``: GitLab reports pipeline
  status per ref (docs "Pipeline status badges": ``?ref=<branch>``), and a pipeline with
  status ``success`` on that ref → ``pipeline_succeeded`` of the same subject, which ends
  the risk (not listed on timelines). Other pipeline statuses map to no signal.
- Every other ``object_kind`` (push, merge_request, note...) → no signal.

Attributes: ``ref`` (GitLab's 8-digit ``short_sha``), ``sha`` (from ``commit_url`` for
deployments, which carry no full sha), ``environment``, ``status``, ``git_ref`` (branch or
tag, when given), ``environment_tier``, ``pipeline_id``. ``user``, ``user_url``,
``commit_title`` and commit authors are never read: the draft names no people.
"""

from __future__ import annotations

import re
from typing import Any

from ingest.delivery import Delivery
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

_DEPLOYMENT_ACTIONS: dict[str, DeployAction | None] = {
    "running": "started",
    "success": "succeeded",
    "failed": "failed",
    "canceled": None,
}
_COMMIT_SHA = re.compile(r"/commit/([0-9a-f]{40,64})$")
_SHORT = 8  # GitLab shows 8-digit short shas


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json()
    kind = require(body, "object_kind", str)
    if kind == "deployment":
        return _deployment(delivery, body)
    if kind == "pipeline":
        return _pipeline(delivery, body)
    return []


def _project_path(body: dict[str, Any]) -> str:
    path: str = require(require(body, "project", dict), "path_with_namespace", str, "project")
    return path


def _deployment(delivery: Delivery, body: dict[str, Any]) -> list[Signal]:
    status = require(body, "status", str)
    if status not in _DEPLOYMENT_ACTIONS:
        # created, blocked, skipped: GitLab documents no hook for them; not a change
        return []
    action = _DEPLOYMENT_ACTIONS[status]
    if action is None:
        return []
    environment = require(body, "environment", str)
    path = _project_path(body)
    commit_url = optional(body, "commit_url", str)
    match = _COMMIT_SHA.search(commit_url or "")
    sha = match.group(1) if match else None
    ref = optional(body, "short_sha", str) or short_sha(sha, _SHORT)
    links = []
    deployable_url = optional(body, "deployable_url", str)  # null for API/trigger deploys
    if deployable_url:
        links.append(Link(url=deployable_url, title="Deployment job"))
    external_url = optional(body, "environment_external_url", str)
    if external_url:
        links.append(Link(url=external_url, title=environment))
    deployment_id = body.get("deployment_id")
    return [
        deploy_signal(
            delivery,
            subject=f"{path}/{environment}",
            action=action,
            occurred_at=parse_time(body.get("status_changed_at")),
            environment=environment,
            sha=sha,
            ref=ref,
            status=status,
            links=links,
            extra={
                "git_ref": optional(body, "ref", str),
                "environment_tier": optional(body, "environment_tier", str),
                "deployment_id": str(deployment_id) if deployment_id is not None else None,
            },
        )
    ]


def _pipeline(delivery: Delivery, body: dict[str, Any]) -> list[Signal]:
    attrs = require(body, "object_attributes", dict)
    status = require(attrs, "status", str, "object_attributes")
    action: DeployAction
    if status == "failed":
        action = "pipeline_failed"
    elif status == "success":
        action = "pipeline_succeeded"
    else:
        return []
    path = _project_path(body)
    environment = _failed_environment(body) if action == "pipeline_failed" else None
    sha = optional(attrs, "sha", str, "object_attributes")
    git_ref = optional(attrs, "ref", str, "object_attributes")
    subject = f"{path}/{environment}" if environment else f"{path}/pipeline" + (
        f"@{git_ref}" if git_ref else "")
    pipeline_id = attrs.get("id")
    what = f"Pipeline #{pipeline_id}" if pipeline_id is not None else "Pipeline"
    if git_ref:
        what += f" on {git_ref}"
    if environment:
        what += f" for {environment}"
    url = optional(attrs, "url", str, "object_attributes")
    return [
        deploy_signal(
            delivery,
            subject=subject,
            action=action,
            occurred_at=parse_time(attrs.get("finished_at")),
            environment=environment,
            sha=sha,
            ref=short_sha(sha, _SHORT),
            status=status,
            what=what,
            links=[Link(url=url, title="Pipeline")] if url else [],
            extra={
                "git_ref": git_ref,
                "pipeline_id": str(pipeline_id) if pipeline_id is not None else None,
            },
            service=None if environment else path,
        )
    ]


def _failed_environment(body: dict[str, Any]) -> str | None:
    """The environment a failed job was deploying to, if one was."""
    builds = body.get("builds")
    if not isinstance(builds, list):
        return None
    for build in builds:
        if not isinstance(build, dict) or build.get("status") != "failed":
            continue
        env = build.get("environment")
        if isinstance(env, dict) and isinstance(env.get("name"), str) and env["name"]:
            name: str = env["name"]
            return name
    return None

