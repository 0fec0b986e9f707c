"""Argo CD notifications (the ``webhook`` service): syncs and application health.

Argo CD has no fixed webhook payload: the body is a template the user writes
(argo-cd ``docs/operator-manual/notifications/services/webhook.md``; triggers from
``docs/operator-manual/notifications/catalog.md``). Hindsight reads three shapes:

1. **Hindsight's template** (recommended). In ``argocd-notifications-cm``::

       service.webhook.hindsight: |
         url: https://hindsight.example.com/v1/webhooks/argocd
         headers:
         - name: Authorization
           value: Bearer $hindsight-token
         - name: Content-Type
           value: application/json
       template.hindsight-on-sync-failed: |
         webhook:
           hindsight:
             method: POST
             body: |
               {
                 "trigger": "on-sync-failed",
                 "app": "{{.app.metadata.name}}",
                 "environment": "{{index .app.metadata.labels "environment"}}",
                 "namespace": "{{.app.spec.destination.namespace}}",
                 "repo": "{{.app.spec.source.repoURL}}",
                 "revision": "{{.app.status.sync.revision}}",
                 "sync_status": "{{.app.status.sync.status}}",
                 "health_status": "{{.app.status.health.status}}",
                 "operation_phase": "{{.app.status.operationState.phase}}",
                 "started_at": "{{.app.status.operationState.startedAt}}",
                 "finished_at": "{{.app.status.operationState.finishedAt}}",
                 "reconciled_at": "{{.app.status.reconciledAt}}",
                 "url": "{{.context.argocdUrl}}/applications/{{.app.metadata.name}}"
               }

   with one template per trigger (as the catalog has one per trigger), differing only in
   ``"trigger"``, each sent by its trigger: ``send: [hindsight-on-sync-failed]``. Only
   ``app`` is required; the rest is used when present (empty strings and Go's
   ``<no value>`` count as absent). ``environment`` falls back to ``namespace``; a
   ``health_changed_at`` field (``.app.status.health.lastTransitionTime``, newer Argo
   CD) is preferred over ``reconciled_at`` for health changes.
2. **The documented Slack-style example** (``{"attachments": [{"title": app,
   "title_link", "fields": [{"title": "Sync Status" | "Health Status" | "Revision" |
   "Repository", "value"}]}]}``).
3. **The documented commit-status example** (``{"state": "pending" | "success" |
   "error", "target_url": ".../applications/<app>", "context":
   "continuous-delivery/<app>"}``).

Meaning (subject: the application, TIMELINE.md), by trigger:

- ``on-sync-running`` → deploy ``started`` at ``started_at``;
- ``on-sync-succeeded`` / ``on-deployed`` → deploy ``succeeded`` at ``finished_at``,
  followed by the app's health ``ok`` when it is Healthy (``on-deployed`` means synced
  *and* healthy);
- ``on-sync-failed`` → deploy ``failed`` (state ``failing``; deploys never open
  incidents, a failed one is a risk);
- ``on-health-degraded`` → kind ``alert``, state ``failing``: the running application is
  unhealthy, which is an outage signal rather than a change, so it opens or joins an
  incident like any alert; ``on-health-healthy`` (a trigger you may add, e.g.
  ``when: app.status.health.status == 'Healthy'``) → that alert ``ok``;
- ``on-created``, ``on-deleted``, ``on-sync-status-unknown`` → no signal.

Without a known ``trigger`` (and in shapes 2 and 3) the fields decide, in this order:
health ``Degraded`` → alert failing; operation phase ``Failed``/``Error`` (commit status
``error``/``failure``) → deploy failed; ``Running`` (``pending``) → started;
``Succeeded`` (sync status ``Synced``, ``success``) → succeeded, plus ok when Healthy;
health ``Healthy`` alone → ok; anything else → no signal. Shapes 2 and 3 carry no
times, so their signals use the receipt time. Attributes: ``ref`` (7-digit revision, or
the whole revision when it is a chart version), ``sha``, ``environment``, ``status``,
``sync_status``, ``health_status``, ``repo``. Argo CD's operation ``initiatedBy`` is
never asked for: the draft names no people.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingest.delivery import Delivery, MappingError
from ingest.patterns import FULL_SHA
from ingest.signals import Link, Signal, State
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

@dataclass(frozen=True)
class _App:
    """What one notification says about one application, whatever the shape."""

    name: str
    trigger: str = ""
    environment: str = ""
    repo: str = ""
    revision: str = ""
    sync_status: str = ""
    health_status: str = ""
    phase: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    health_at: datetime | None = None
    url: str = ""


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json()
    if not isinstance(body, dict):
        raise MappingError("body: expected an object")
    if "app" in body:
        app = _from_template(body)
    elif "attachments" in body:
        app = _from_attachments(body)
    elif "context" in body and "state" in body:
        app = _from_commit_status(body)
    else:
        raise MappingError("app: missing (see Hindsight's Argo CD template)")
    return _signals(delivery, app)


def _text(value: Any) -> str:
    """A rendered template value; Go renders a missing key as ``<no value>``."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MappingError(f"expected a string, got {type(value).__name__}")
    value = value.strip()
    return "" if value == "<no value>" else value


def _time(body: dict[str, Any], key: str) -> datetime | None:
    text = _text(body.get(key))
    return parse_time(text) if text else None


def _from_template(body: dict[str, Any]) -> _App:
    name = _text(require(body, "app", str))
    if not name:
        raise MappingError("app: empty")
    return _App(
        name=name,
        trigger=_text(optional(body, "trigger", str)),
        environment=_text(optional(body, "environment", str))
        or _text(optional(body, "namespace", str)),
        repo=_text(optional(body, "repo", str)),
        revision=_text(optional(body, "revision", str)),
        sync_status=_text(optional(body, "sync_status", str)),
        health_status=_text(optional(body, "health_status", str)),
        phase=_text(optional(body, "operation_phase", str)),
        started_at=_time(body, "started_at"),
        finished_at=_time(body, "finished_at"),
        health_at=_time(body, "health_changed_at") or _time(body, "reconciled_at"),
        url=_text(optional(body, "url", str)),
    )


def _from_attachments(body: dict[str, Any]) -> _App:
    attachments = require(body, "attachments", list)
    if not attachments:
        raise MappingError("attachments: empty")
    first = attachments[0]
    name = _text(require(first, "title", str, "attachments[0]"))
    if not name:
        raise MappingError("attachments[0].title: empty")
    fields: dict[str, str] = {}
    for i, field in enumerate(optional(first, "fields", list, "attachments[0]") or []):
        where = f"attachments[0].fields[{i}]"
        title = require(field, "title", str, where)
        fields[title.strip().lower()] = _text(optional(field, "value", str, where))
    return _App(
        name=name,
        repo=fields.get("repository", "").removeprefix(":arrow_heading_up:").strip(),
        revision=fields.get("revision", ""),
        sync_status=fields.get("sync status", ""),
        health_status=fields.get("health status", ""),
        url=_text(optional(first, "title_link", str, "attachments[0]")),
    )


_COMMIT_STATES = {"success": "Succeeded", "error": "Error", "failure": "Failed",
                  "pending": "Running"}


def _from_commit_status(body: dict[str, Any]) -> _App:
    context = _text(require(body, "context", str))
    state = _text(require(body, "state", str))
    url = _text(optional(body, "target_url", str))
    name = context.rsplit("/", 1)[-1] or url.rstrip("/").rsplit("/", 1)[-1]
    if not name:
        raise MappingError("context: names no application")
    if state not in _COMMIT_STATES:
        raise MappingError(f"state: unknown state {state[:40]!r}")
    return _App(name=name, phase=_COMMIT_STATES[state], url=url)


_TRIGGERS: dict[str, tuple[DeployAction | None, State | None]] = {
    # trigger: (deploy action, health state); None = no signal of that kind
    "on-sync-running": ("started", None),
    "on-sync-succeeded": ("succeeded", None),
    "on-deployed": ("succeeded", "ok"),
    "on-sync-failed": ("failed", None),
    "on-health-degraded": (None, "failing"),
    "on-health-healthy": (None, "ok"),
    "on-created": (None, None),
    "on-deleted": (None, None),
    "on-sync-status-unknown": (None, None),
}


def _meaning(app: _App) -> tuple[DeployAction | None, State | None]:
    healthy: State | None = "ok" if app.health_status == "Healthy" else None
    if app.trigger in _TRIGGERS:
        action, health = _TRIGGERS[app.trigger]
        if app.trigger == "on-sync-succeeded":
            health = healthy  # synced, but maybe still Progressing
        return action, health
    if app.health_status == "Degraded":
        return None, "failing"
    if app.phase in ("Failed", "Error"):
        return "failed", None
    if app.phase == "Running":
        return "started", None
    if app.phase == "Succeeded" or (not app.phase and app.sync_status == "Synced"):
        return "succeeded", healthy
    return None, healthy


def _signals(delivery: Delivery, app: _App) -> list[Signal]:
    action, health = _meaning(app)
    links = (Link(url=app.url, title=f"Argo CD application {app.name}"),) if app.url else ()
    signals: list[Signal] = []
    if action is not None:
        sha = app.revision if FULL_SHA.fullmatch(app.revision) else None
        signals.append(
            deploy_signal(
                delivery,
                subject=app.name,
                action=action,
                occurred_at=app.started_at if action == "started" else app.finished_at,
                environment=app.environment or None,
                sha=sha,
                ref=short_sha(app.revision),
                status=app.phase or app.sync_status or action,
                links=links,
                extra={
                    "sync_status": app.sync_status,
                    "health_status": app.health_status,
                    "repo": app.repo,
                },
            )
        )
    if health is not None:
        # After a deploy in the same delivery, so that on equal times the app's latest
        # state is its health (TIMELINE.md rule 3: ties by position).
        occurred = app.health_at or (app.finished_at if action else None)
        status = app.health_status or ("Degraded" if health == "failing" else "Healthy")
        attributes = {"environment": app.environment, "health_status": status,
                      "sync_status": app.sync_status, "revision": app.revision}
        signals.append(
            Signal(
                source=delivery.source,
                kind="alert",
                subject=app.name,
                state=health,
                occurred_at=occurred or delivery.received_at,
                notified_at=delivery.received_at,
                time_source="source" if occurred else "receipt",
                summary=f"Argo CD application {app.name} is {status}",
                links=links,
                attributes=tuple(sorted((k, v) for k, v in attributes.items() if v)),
            )
        )
    return signals
