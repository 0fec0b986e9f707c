"""GitLab CI/CD as a deploy tool: pipeline and deployment webhooks of one project.

Deploys are changes, never outages (TIMELINE.md rule 7): this model returns deliveries and
``[services]`` globs, and no reports. Releases come from the plan shared with the other
deploy models (``tests.simulation.tools.github.plan_releases``).

What GitLab really sends, and where it is documented:

- "Pipeline events are triggered when the status of a pipeline changes"
  (docs.gitlab.com/user/project/integrations/webhook_events/#pipeline-events): a hook
  for ``pending``, ``running``, then ``failed`` or ``success``. Retrying a failed job
  reruns it in the same pipeline, which goes back to ``running`` and then to its new
  outcome, with the same pipeline ``id``. Times are ``"2025-03-14 09:26:29 UTC"``.
- "Deployment events are triggered when a deployment starts, succeeds, fails or is
  canceled" (same page, #deployment-events): ``running`` then ``success`` or ``failed``,
  with ``status_changed_at`` in the instance's zone (``"2021-04-28 21:50:00 +0200"``). A
  retried deploy job is a new deployment (a new ``deployment_id``).
- Headers (docs.gitlab.com/user/project/integrations/webhooks/#delivery-headers;
  gitlab-org/gitlab app/services/web_hook_service.rb): ``X-Gitlab-Event`` ("Pipeline
  Hook", "Deployment Hook"); ``X-Gitlab-Webhook-UUID``, new for every request;
  ``X-Gitlab-Event-UUID``, new for every hook execution that was not triggered by an
  earlier webhook (lib/gitlab/web_hooks/recursion_detection/uuid.rb); ``Idempotency-Key``
  (GitLab 17.4+), "consistent across webhook retries". GitLab does not retry a failed
  delivery on its own; "Resend request" on the hook's Recent events page executes it
  again with the stored ``Idempotency-Key``, so a resend carries the same body and
  ``Idempotency-Key`` but a new ``X-Gitlab-Event-UUID``.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

from tests.fixtures import FIXTURES
from tests.scenarios.payloads import Recorded
from tests.simulation.tools.github import Attempt, after, guid, plan_releases, seconds
from tests.simulation.world import Model, Observation, ServicePlan


def _fixture(name: str) -> tuple[dict[str, str], dict[str, Any]]:
    raw = orjson.loads((FIXTURES / "gitlab" / f"{name}.json").read_bytes())
    return dict(raw["headers"]), copy.deepcopy(raw["body"])


def utc_text(value: datetime) -> str:
    """GitLab's pipeline times: ``2025-03-14 09:26:29 UTC``."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def project_path(service: str) -> str:
    return f"platform/{service}-api"


@dataclass
class _Project:
    rng: random.Random
    path: str
    zone: timezone  # the instance's time zone, used in status_changed_at
    resend: float  # chance that a delivery is resent by hand later
    deliveries: list[Recorded]

    def send(self, event: str, body: dict[str, Any], sent: datetime) -> None:
        headers, _ = _fixture("push")
        key = guid(self.rng)
        headers.update({"X-Gitlab-Event": event, "X-Gitlab-Event-UUID": guid(self.rng),
                        "X-Gitlab-Webhook-UUID": guid(self.rng), "Idempotency-Key": key})
        data = orjson.dumps(body)
        first = Recorded("gitlab", after(self.rng, sent, 0.5, 6.0), headers, data,
                         key=f"gitlab:{key}")
        self.deliveries.append(first)
        if self.rng.random() < self.resend:
            again = dict(headers, **{"X-Gitlab-Event-UUID": guid(self.rng),
                                     "X-Gitlab-Webhook-UUID": guid(self.rng)})
            self.deliveries.append(Recorded(
                "gitlab", first.received_at + timedelta(seconds=self.rng.uniform(60, 7200)),
                again, data, key=f"gitlab:{key}:resend", retry_of=first.key))

    def project(self, body: dict[str, Any]) -> None:
        name = self.path.split("/", 1)[1]
        web = f"https://gitlab.acme.example/{self.path}"
        body["project"].update(name=name, path_with_namespace=self.path, web_url=web,
                               homepage=web, git_http_url=f"{web}.git",
                               http_url=f"{web}.git")


def _pipeline(project: _Project, pipeline_id: int, sha: str, status: str,
              created: datetime, finished: datetime | None,
              deploy_status: str, deploy_times: tuple[datetime, datetime] | None
              ) -> dict[str, Any]:
    _, body = _fixture("pipeline_failed")
    project.project(body)
    attrs = body["object_attributes"]
    attrs.update(id=pipeline_id, sha=sha, status=status, detailed_status=status,
                 created_at=utc_text(created),
                 finished_at=utc_text(finished) if finished else None,
                 duration=int((finished - created).total_seconds()) if finished else None,
                 url=f"https://gitlab.acme.example/{project.path}/-/pipelines/{pipeline_id}")
    body["commit"].update(id=sha, url=f"https://gitlab.acme.example/{project.path}"
                                      f"/-/commit/{sha}")
    deploy, unit, image = body["builds"]
    deploy["status"] = deploy_status
    deploy["failure_reason"] = "script_failure" if deploy_status == "failed" else None
    if deploy_times is None:
        deploy["started_at"] = deploy["finished_at"] = None
    else:
        deploy["started_at"] = utc_text(deploy_times[0])
        deploy["finished_at"] = utc_text(deploy_times[1]) if deploy_status in (
            "failed", "success") else None
    for build in (deploy, unit, image):
        build["created_at"] = utc_text(created)
    return body


def _deployment(project: _Project, deployment_id: int, sha: str, status: str,
                at: datetime) -> dict[str, Any]:
    _, body = _fixture("deployment_success")
    project.project(body)
    web = f"https://gitlab.acme.example/{project.path}"
    job = project.rng.randrange(10**5, 10**7)
    body.update(status=status, deployment_id=deployment_id, deployable_id=job,
                deployable_url=f"{web}/-/jobs/{job}", short_sha=sha[:8],
                commit_url=f"{web}/-/commit/{sha}",
                status_changed_at=at.astimezone(project.zone).strftime("%Y-%m-%d %H:%M:%S %z"))
    return body


def _release(project: _Project, sha: str, attempts: tuple[Attempt, ...],
             deployment_ids: list[int]) -> None:
    """One pipeline for a commit on main: pending, running, and for each attempt of its
    deploy job a deployment (running, then success or failed) and the pipeline's
    outcome; a retried job puts the pipeline back to running."""
    rng = project.rng
    pipeline_id = rng.randrange(10**5, 10**7)
    created = seconds(attempts[0].start - timedelta(seconds=rng.uniform(120, 600)))
    project.send("Pipeline Hook", _pipeline(project, pipeline_id, sha, "pending", created,
                                            None, "created", None), created)
    running = seconds(created + timedelta(seconds=rng.uniform(3, 30)))
    project.send("Pipeline Hook", _pipeline(project, pipeline_id, sha, "running", created,
                                            None, "created", None), running)
    for number, attempt in enumerate(attempts):
        deployment_ids.append(deployment_ids[-1] + rng.randint(1, 3))
        dep = deployment_ids[-1]
        if number:  # "Retry" on the failed job: the pipeline runs again
            project.send("Pipeline Hook", _pipeline(
                project, pipeline_id, sha, "running", created, None, "running",
                (attempt.start, attempt.end)), attempt.start)
        project.send("Deployment Hook", _deployment(project, dep, sha, "running",
                                                    attempt.start), attempt.start)
        outcome = "success" if attempt.ok else "failed"
        project.send("Deployment Hook", _deployment(project, dep, sha, outcome, attempt.end),
                     attempt.end)
        finished = seconds(attempt.end + timedelta(seconds=rng.uniform(1, 5)))
        project.send("Pipeline Hook", _pipeline(
            project, pipeline_id, sha, outcome, created, finished, outcome,
            (attempt.start, attempt.end)), finished)


def gitlab_ci(plan: ServicePlan, rng: random.Random) -> Observation:
    """Each release is a pipeline whose ``deploy-production`` job deploys to production,
    retried by hand after each failed attempt."""
    path = project_path(plan.name)
    zone = timezone(timedelta(hours=rng.choice([0, 0, 1, 2, -5])))
    project = _Project(rng, path, zone, resend=rng.choice([0.0, 0.02, 0.08]), deliveries=[])
    deployment_ids = [rng.randrange(10, 10**4)]
    for release in plan_releases(plan, rng):
        _release(project, release.sha, release.attempts, deployment_ids)
    return Observation(deliveries=project.deliveries,
                       services={plan.name: [path, f"{path}/*"]})


MODELS: dict[str, Model] = {"gitlab-ci": gitlab_ci}
