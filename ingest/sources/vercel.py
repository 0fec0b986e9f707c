"""Vercel: account (team) webhooks and integration webhooks, deployment events.

Documented at vercel.com/docs/webhooks ("Events": ``{"id": <eventId>, "type":
<event-type>, "createdAt": <javascript-timestamp>, "payload": ..., "region": ...}``) and
vercel.com/docs/webhooks/webhooks-api ("Payload", "Supported Event Types", "Legacy
Event Types", "Securing webhooks", "Delivery Attempts and Retries"). Every deployment
event carries ``payload.deployment`` (``id``, ``name``: "the project name used in the
deployment URL", ``url``, ``meta``), ``payload.links`` (``deployment``, ``project``),
``payload.target`` (``production``, ``staging`` or null) and ``payload.project.id``.

Deploys are changes (TIMELINE.md rule 7), as from GitHub, GitLab and Argo CD:

- ``deployment.created`` → deploy ``started``;
- ``deployment.succeeded`` → ``succeeded`` (fired once the deployment is built and every
  blocking Check passed; it replaced the legacy ``deployment-ready``);
- ``deployment.promoted`` → ``succeeded``, summarised as a "Promotion": the moment a
  deployment starts serving production traffic, automatically after a successful
  production build or by ``vercel promote`` (an instant rollback is one). The docs list
  no ``target`` for it: its target is production by definition;
- ``deployment.error`` → ``failed``: a risk of its service until a later deploy of the
  same subject succeeds (rule 7, as a failed GitHub deployment status);
- ``deployment.canceled`` → no signal: nothing changed in the running system (as
  GitHub's cancelled runs);
- ``deployment.ready`` → no signal: it replaced the legacy ``deployment-prepared``
  ("successfully built", before the Checks), and ``deployment.succeeded`` follows it, so
  mapping both would list one success twice;
- the legacy types still delivered to old webhooks (``deployment``,
  ``deployment-ready``, ``deployment-error``, ``deployment-canceled``) as their
  replacements; every other event (``project.*``, ``domain.*``, ``integration-*``,
  ``deployment.check-rerequested``, ``deployment.cleanup``...) → no signal, answered 202.

Subject: ``<project>/<target>`` (TIMELINE.md: a deploy's subject is the repository and
environment; for Vercel the project and its target), ``production`` for promotions. A
deployment without a target is a preview: its subject is ``<project>/preview@<branch>``
when the git metadata names the branch (Vercel gives each branch its own preview URL),
so a green preview of one branch never ends the risk a failed preview of another left.

Times: ``occurred_at`` is ``createdAt`` ("the date and time the webhook event was
generated", JavaScript milliseconds); ``notified_at`` the receipt (no send time).

Attributes: ``ref`` (7-digit sha), ``sha``, ``environment`` (the target), ``status`` (the
event type), ``git_ref`` (branch), ``deployment_id``, ``project_id``. The git metadata's
commit message and author fields (``githubCommitMessage``, ``githubCommitAuthorName``,
``githubCommitAuthorLogin``...) and ``payload.user`` are never read: the draft names
systems, not people.
"""

from __future__ import annotations

from typing import Any

from ingest.delivery import Delivery, MappingError
from ingest.signals import Link, Signal
from ingest.sources._common import (
    DeployAction,
    deploy_signal,
    from_epoch,
    http_url,
    optional,
    require,
    short_sha,
)

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

PRODUCTION = "production"
PREVIEW = "preview"
_ACTIONS: dict[str, DeployAction | None] = {
    "deployment.created": "started",
    "deployment.succeeded": "succeeded",
    "deployment.promoted": "succeeded",
    "deployment.error": "failed",
    "deployment.canceled": None,
    "deployment.ready": None,
    # Legacy event types, still delivered to webhooks created before they were replaced.
    "deployment": "started",
    "deployment-ready": "succeeded",
    "deployment-error": "failed",
    "deployment-canceled": None,
    "deployment-prepared": None,
}
# The git providers Vercel deploys from write the same keys under their own prefix.
_GIT_PROVIDERS = ("github", "gitlab", "bitbucket")


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json()
    if not isinstance(body, dict):
        raise MappingError("body: expected an object")
    event = require(body, "type", str)
    action = _ACTIONS.get(event)
    if action is None:
        return []  # canceled, ready, project.*, domain.*...: nothing for the timeline
    payload = require(body, "payload", dict)
    deployment = require(payload, "deployment", dict, "payload")
    project = require(deployment, "name", str, "payload.deployment").strip()
    if not project:
        raise MappingError("payload.deployment.name: empty")
    meta = optional(deployment, "meta", dict, "payload.deployment") or {}
    sha = _git(meta, "CommitSha")
    branch = _git(meta, "CommitRef")
    promoted = event == "deployment.promoted"
    target = PRODUCTION if promoted else optional(payload, "target", str, "payload")
    if target:
        subject = f"{project}/{target}"
    else:
        subject = f"{project}/{PREVIEW}" + (f"@{branch}" if branch else "")
    created = body.get("createdAt")
    occurred = from_epoch(created) if isinstance(created, int | float | str) else None
    links = []
    dashboard = payload.get("links")
    inspect = http_url(dashboard.get("deployment")) if isinstance(dashboard, dict) else None
    if inspect:
        links.append(Link(url=inspect, title="Deployment"))
    url = deployment.get("url")
    if isinstance(url, str) and url.strip():
        site = url.strip() if "://" in url else f"https://{url.strip()}"
        if http_url(site):
            links.append(Link(url=site, title=target or PREVIEW))
    project_id = (optional(payload.get("project"), "id", str, "payload.project")
                  or optional(payload, "projectId", str, "payload"))
    return [
        deploy_signal(
            delivery,
            subject=subject,
            action=action,
            occurred_at=occurred,
            environment=target or PREVIEW,
            sha=sha,
            ref=short_sha(sha),
            status=event,
            what="Promotion" if promoted else "Deployment",
            links=links,
            extra={"git_ref": branch,
                   "deployment_id": optional(deployment, "id", str, "payload.deployment"),
                   "project_id": project_id},
        )
    ]


def _git(meta: dict[str, Any], key: str) -> str | None:
    """``githubCommitSha``, ``gitlabCommitSha``... whichever provider deployed it."""
    for provider in _GIT_PROVIDERS:
        value = meta.get(f"{provider}{key}")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
