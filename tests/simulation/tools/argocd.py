"""Argo CD notifications: an application's syncs (changes) and its health (an outage
signal), sent by the ``webhook`` service with Hindsight's template.

Decided by the contract: ``ingest/sources/argocd.py`` maps ``on-health-degraded`` to kind
``alert``, state ``failing`` ("the running application is unhealthy, which is an outage
signal rather than a change, so it opens or joins an incident like any alert") and
``on-health-healthy`` to that alert ``ok``. So this model is an outage watcher too: each
outage Argo CD sees as a Degraded application gets a ``Report``; syncs are deploys
(TIMELINE.md rule 7) and get none.

What Argo CD really does, and where it is documented:

- Triggers (argo-cd docs/operator-manual/notifications/catalog.md): ``on-sync-running``
  (operation phase Running), ``on-sync-succeeded`` (phase Succeeded), ``on-sync-failed``
  (phase Error or Failed), ``on-deployed`` (phase Succeeded *and* health Healthy, once per
  revision: ``oncePer: app.status.operationState.syncResult.revision``), and
  ``on-health-degraded`` (health Degraded). A trigger notifies when its condition becomes
  true, not again while it stays true (docs/operator-manual/notifications/triggers.md).
  ``on-health-healthy`` is the trigger Hindsight's docs ask you to add for recoveries.
- Health (docs/operator-manual/health.md): a Deployment is Degraded when its rollout
  exceeds ``progressDeadlineSeconds`` (600 s by default), a pod crash-loops or a
  container fails; Argo CD sees it on its watch of the resources, so seconds to 10 min
  after the failure began. An outage whose cause leaves the pods Ready (a dependency down)
  is not seen at all. Kubernetes times (``reconciledAt``, ``startedAt``, ``finishedAt``,
  ``health.lastTransitionTime``) are whole seconds, RFC 3339 ``Z``; an unset one renders
  as ``<no value>`` in a Go template.
- The webhook service retries a request that failed (network error or 5xx) up to
  ``retryMax`` (3) times, ``retryWaitMin``..``retryWaitMax`` (1 s..5 s) apart, with the
  same bytes (docs/operator-manual/notifications/services/webhook.md). The body has no
  delivery id and no send time, so detection is the receipt.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from tests.fixtures import FIXTURES
from tests.scenarios.payloads import Recorded
from tests.simulation.tools.github import Attempt, Release, after, plan_releases, rfc3339, seconds
from tests.simulation.world import Model, Observation, Outage, Report, ServicePlan

MONITOR = "argocd"


@dataclass(frozen=True)
class _Window:
    """An outage as Argo CD saw it: Degraded from ``degraded`` until ``healthy``."""

    outage: Outage
    degraded: datetime
    healthy: datetime


@dataclass
class _App:
    rng: random.Random
    name: str
    service: str
    newer: bool  # Argo CD that renders health.lastTransitionTime (health_changed_at)
    deployed: bool  # subscribed to on-deployed rather than on-sync-succeeded
    retry: float  # chance a request failed and the webhook service sent it again
    deliveries: list[Recorded] = field(default_factory=list)
    health: str = "Healthy"
    transition: datetime | None = None  # health.lastTransitionTime
    revision: str = ""
    phase: str = "Succeeded"
    sync_status: str = "Synced"
    op_started: datetime | None = None
    op_finished: datetime | None = None

    def send(self, trigger: str, at: datetime) -> Recorded:
        """The trigger's notification, rendered from the app's state at ``at``."""
        raw = orjson.loads((FIXTURES / "argocd" / "health_degraded.json").read_bytes())
        headers: dict[str, str] = dict(raw["headers"])
        body: dict[str, Any] = copy.deepcopy(raw["body"])

        def when(value: datetime | None) -> str:
            return rfc3339(value) if value else "<no value>"

        body.update(
            trigger=trigger, app=self.name, environment="production", namespace=self.service,
            repo=f"https://github.com/acme/{self.service}-deploy.git",
            revision=self.revision or "<no value>", sync_status=self.sync_status,
            health_status=self.health, operation_phase=self.phase,
            started_at=when(self.op_started), finished_at=when(self.op_finished),
            reconciled_at=rfc3339(at),
            url=f"https://argocd.acme.example/applications/{self.name}",
        )
        if self.newer:
            body["health_changed_at"] = when(self.transition)
        first = Recorded("argocd", after(self.rng, at, 0.5, 8.0), headers, orjson.dumps(body),
                         key=f"argocd:{self.rng.getrandbits(64):016x}")
        self.deliveries.append(first)
        if self.rng.random() < self.retry:
            self.deliveries.append(first.retried(
                first.received_at + timedelta(seconds=self.rng.uniform(1, 5))))
        return first


def _windows(plan: ServicePlan, rng: random.Random) -> list[_Window]:
    windows = []
    for outage in plan.outages:
        if rng.random() < 0.25:
            continue  # the pods stayed Ready: Argo CD never saw this outage
        degraded = seconds(outage.start + timedelta(seconds=rng.uniform(15, 600)))
        if degraded >= outage.end:
            continue  # over before the rollout deadline: never Degraded
        healthy = seconds(outage.end + timedelta(seconds=rng.uniform(5, 90)))
        windows.append(_Window(outage, degraded, healthy))
    return windows


def argocd(plan: ServicePlan, rng: random.Random) -> Observation:
    """One application, ``<service>-prod``, synced for each release (a failed sync is
    synced again by hand until it succeeds) and Degraded during the outages it sees."""
    app = _App(rng, f"{plan.name}-prod", plan.name, newer=rng.random() < 0.6,
               deployed=rng.random() < 0.4, retry=rng.choice([0.0, 0.05, 0.15]),
               transition=seconds(plan.begin - timedelta(days=3)))
    windows = _windows(plan, rng)
    # Everything that happens to the app, in time order; at one instant a health change
    # is seen before a sync (the sync's completion is reconciled with the new health).
    happenings: list[tuple[datetime, int, Any]] = []
    for window in windows:
        happenings += [(window.degraded, 0, ("degraded", window)),
                       (window.healthy, 0, ("healthy", window))]
    for release in plan_releases(plan, rng):
        for attempt in release.attempts:
            happenings += [(attempt.start, 1, ("running", release, attempt)),
                           (attempt.end, 1, ("done", release, attempt))]
    happenings.sort(key=lambda h: (h[0], h[1]))
    detected: dict[datetime, datetime] = {}
    pending_deployed = False
    for at, _, what in happenings:
        if what[0] == "degraded":
            app.health, app.transition = "Degraded", at
            detected[at] = app.send("on-health-degraded", at).received_at
        elif what[0] == "healthy":
            app.health, app.transition = "Healthy", at
            app.send("on-health-healthy", at)
            if pending_deployed:  # on-deployed's condition became true just now
                app.send("on-deployed", at)
                pending_deployed = False
        elif what[0] == "running":
            release, attempt = what[1], what[2]
            app.revision, app.phase, app.sync_status = release.sha, "Running", "OutOfSync"
            app.op_started, app.op_finished = attempt.start, None
            pending_deployed = False
            app.send("on-sync-running", at)
        else:
            _finish(app, what[1], what[2], at)
            pending_deployed = app.deployed and app.phase == "Succeeded" and (
                app.health != "Healthy")
    reports = [Report(w.outage, MONITOR, started=w.degraded, detected=detected[w.degraded],
                      resolved=w.healthy) for w in windows]
    return Observation(deliveries=app.deliveries, reports=reports,
                       services={plan.name: [app.name]})


def _finish(app: _App, release: Release, attempt: Attempt, at: datetime) -> None:
    app.op_finished = at
    if not attempt.ok:
        app.phase = app.rng.choice(["Failed", "Error"])
        app.send("on-sync-failed", at)
        return
    app.phase, app.sync_status = "Succeeded", "Synced"
    if not app.deployed:
        app.send("on-sync-succeeded", at)
    elif app.health == "Healthy":
        app.send("on-deployed", at)


MODELS: dict[str, Model] = {"argocd": argocd}
