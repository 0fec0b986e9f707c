"""Vercel as a deploy tool: each release is a production deployment (and its promotion),
failed attempts retried by a new deployment; sometimes a preview is canceled.

Deploys are changes, never outages (TIMELINE.md rule 7): this model returns deliveries and
``[services]`` globs, and no reports. It shares the release plan of the GitHub model.

What Vercel really sends, and where it is documented:

- Every event is ``{"id": <eventId>, "type", "createdAt": <JavaScript ms>, "region",
  "payload"}`` (vercel.com/docs/webhooks, "Events"), signed with ``x-vercel-signature``.
- A production deployment sends ``deployment.created`` when it starts, then
  ``deployment.succeeded`` or ``deployment.error``; a successful production deployment
  is then promoted (``deployment.promoted``: "after a successful build", a few seconds
  later). Delivery order is not guaranteed (vercel-labs/demo-webhooks README), so
  receipts may cross (vercel.com/docs/webhooks/webhooks-api, "Supported Event Types").
- A delivery not answered ``2xx`` within 30 s is retried "up to 24 hours with an
  exponential backoff" ("Delivery Attempts and Retries"): the same event, the same id.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import orjson

from tests.scenarios.payloads import Recorded
from tests.simulation.tools.github import after, plan_releases, seconds, sha1
from tests.simulation.world import Observation, ServicePlan, ms

SOURCE = "vercel"


def _id(rng: random.Random, length: int = 24) -> str:
    return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")
                   for _ in range(length))


class _Webhook:
    def __init__(self, plan: ServicePlan, rng: random.Random) -> None:
        self.rng = rng
        self.project = f"{plan.name}-web"
        self.project_id = f"prj_{_id(rng, 28)}"
        self.retry = rng.choice([0.0, 0.02, 0.08])
        self.deliveries: list[Recorded] = []

    def send(self, event: str, at: datetime, deployment: dict[str, Any],
             target: str | None) -> None:
        event_id = _id(self.rng)
        payload: dict[str, Any] = {
            "team": {"id": "team_a1b2c3d4e5f6g7h8i9j0"}, "user": {"id": "usr_k1l2m3n4o5p6q7r8"},
            "deployment": deployment,
            "links": {"deployment": f"https://vercel.com/acme/{self.project}/{deployment['id'][4:]}",
                      "project": f"https://vercel.com/acme/{self.project}"},
            "project": {"id": self.project_id}, "plan": "pro", "regions": ["iad1"]}
        if event != "deployment.promoted":
            payload["target"] = target
        body = orjson.dumps({"id": event_id, "type": event,
                             "createdAt": int(at.timestamp() * 1000), "region": "iad1",
                             "payload": payload})
        first = Recorded(SOURCE, after(self.rng, at, 0.05, 2.0),
                         {"Content-Type": "application/json"}, body, key=f"vercel:{event_id}")
        self.deliveries.append(first)
        if self.rng.random() < self.retry:
            # Not answered in time: retried with backoff, the same event.
            self.deliveries.append(first.retried(
                first.received_at + timedelta(seconds=self.rng.uniform(30, 3600))))

    def deployment(self, sha: str, branch: str) -> dict[str, Any]:
        dep_id = f"dpl_{_id(self.rng, 28)}"
        return {"id": dep_id, "url": f"{self.project}-{dep_id[4:13].lower()}-acme.vercel.app",
                "name": self.project,
                "meta": {"githubCommitSha": sha, "githubCommitRef": branch,
                         "githubCommitMessage": "Ship it", "githubCommitAuthorLogin": "dev"}}


def vercel(plan: ServicePlan, rng: random.Random) -> Observation:
    hook = _Webhook(plan, rng)
    for release in plan_releases(plan, rng):
        for attempt in release.attempts:
            deployment = hook.deployment(release.sha, "main")
            start = ms(attempt.start + timedelta(milliseconds=rng.randrange(1, 900)))
            hook.send("deployment.created", start, deployment, "production")
            end = ms(attempt.end + timedelta(milliseconds=rng.randrange(1, 900)))
            hook.send("deployment.succeeded" if attempt.ok else "deployment.error", end,
                      deployment, "production")
            if attempt.ok:
                hook.send("deployment.promoted",
                          ms(end + timedelta(seconds=rng.uniform(1, 8))), deployment, None)
        if rng.random() < 0.2:  # a preview of a branch, canceled by a newer push
            preview = hook.deployment(sha1(rng), f"feature/{release.sha[:6]}")
            at = seconds(release.start - timedelta(minutes=rng.uniform(20, 90)))
            if at > plan.begin:
                hook.send("deployment.created", ms(at), preview, None)
                hook.send("deployment.canceled", ms(at + timedelta(seconds=rng.uniform(5, 60))),
                          preview, None)
    return Observation(deliveries=hook.deliveries,
                       services={plan.name: [f"{hook.project}/*"]})


MODELS = {"vercel": vercel}
