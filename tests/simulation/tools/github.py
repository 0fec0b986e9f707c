"""GitHub as a deploy tool: Actions workflow runs and the deployments their jobs create.

Deploys are changes, never outages (TIMELINE.md rule 7): this model returns deliveries and
``[services]`` globs, and no reports. It also holds the release plan the other deploy
models (GitLab, Argo CD) share: when a service is released, with how many attempts, and
which releases sit just before an outage (candidate contributing factors) or inside it
(a fix or rollback).

What GitHub really sends, and where it is documented:

- Every delivery has ``X-GitHub-Event`` (the event name; the body never repeats it) and
  ``X-GitHub-Delivery``, a GUID unique per *event*: a redelivery (by hand or through the
  REST API; GitHub never retries on its own) carries the same GUID and the same body
  (docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers;
  .../testing-and-troubleshooting-webhooks/redelivering-webhooks; github/docs#32822).
- A webhook's content type is ``application/json`` or ``application/x-www-form-urlencoded``;
  the latter sends the JSON as the form parameter ``payload``, and
  ``X-Hub-Signature-256`` is the HMAC of the raw form body
  (docs.github.com/en/webhooks/using-webhooks/creating-webhooks, "Content type";
  .../validating-webhook-deliveries).
- ``workflow_run`` is sent with action ``requested``, ``in_progress`` and ``completed``
  (with ``conclusion``). "Re-run failed jobs" keeps the run ``id`` and increments
  ``run_attempt``, sending the three actions again
  (docs.github.com/en/webhooks/webhook-events-and-payloads#workflow_run;
  docs.github.com/en/actions/managing-workflow-runs/re-running-workflows-and-jobs).
- A job with ``environment:`` creates a deployment (event ``deployment``, action
  ``created``) and then its statuses (event ``deployment_status``): ``queued``,
  ``in_progress``, then ``success`` or ``failure``; a re-run job creates a new deployment
  (docs.github.com/en/actions/deployment/targeting-different-environments;
  docs.github.com/en/webhooks/webhook-events-and-payloads#deployment_status).
  Times (``created_at``, ``updated_at``) are whole seconds in UTC, ``Z``.
"""

from __future__ import annotations

import copy
import random
import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tests.fixtures import FIXTURES
from tests.scenarios.payloads import Recorded
from tests.simulation.world import Model, Observation, ServicePlan, random_instant

# --- the release plan shared by the deploy models ------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One try at deploying a release: from ``start`` to ``end`` (whole seconds)."""

    start: datetime
    end: datetime
    ok: bool


@dataclass(frozen=True)
class Release:
    """A commit released to production, tried until an attempt succeeds (the last).

    ``why``: ``routine``; ``suspect`` (finished minutes before an outage started: a
    candidate contributing factor); ``fix`` (started during an outage)."""

    sha: str
    attempts: tuple[Attempt, ...]
    why: str

    @property
    def start(self) -> datetime:
        return self.attempts[0].start

    @property
    def end(self) -> datetime:
        return self.attempts[-1].end


def seconds(value: datetime) -> datetime:
    """``value`` cut to whole seconds (what GitHub, GitLab and Kubernetes times carry)."""
    return value.replace(microsecond=0)


def sha1(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040x}"


def guid(rng: random.Random) -> str:
    """A version 4 UUID drawn from ``rng``: a world is reproducible from its seed."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _attempts_ending(rng: random.Random, end: datetime, failures: int) -> tuple[Attempt, ...]:
    """``failures`` failed attempts then a successful one that ends at ``end``; each
    re-run starts 2 to 30 minutes after the previous attempt ended."""
    attempts: list[Attempt] = []
    stop = end
    for n in range(failures + 1):
        start = seconds(stop - timedelta(seconds=rng.uniform(40, 480)))
        attempts.append(Attempt(start, stop, ok=n == 0))
        stop = seconds(start - timedelta(seconds=rng.uniform(120, 1800)))
    return tuple(reversed(attempts))


def _failures(rng: random.Random) -> int:
    roll = rng.random()
    return 0 if roll < 0.7 else 1 if roll < 0.92 else 2


def plan_releases(plan: ServicePlan, rng: random.Random) -> list[Release]:
    """Releases of ``plan``'s service, in order of their first attempt:

    - routine ones, 0 to 2 a day at any hour;
    - for most outages, one whose last (successful) attempt finished 20 s to 15 min
      before the outage started (TIMELINE.md rule 7: a candidate contributing factor);
    - for some outages, a fix started during the outage.

    A quarter of releases fail once or twice before an attempt succeeds, so every failed
    deploy is followed by a success of the same subject (the end of its risk, rule 7).
    Every release ends at least 3 h before the world does."""
    earliest = plan.begin + timedelta(minutes=10)
    latest = plan.end - timedelta(hours=3)
    releases: list[Release] = []
    day = plan.begin
    while day < plan.end:
        for _ in range(rng.randint(0, 2)):
            end = seconds(random_instant(rng, day, day + timedelta(days=1)))
            releases.append(Release(sha1(rng), _attempts_ending(rng, end, _failures(rng)),
                                    "routine"))
        day += timedelta(days=1)
    for outage in plan.outages:
        if rng.random() < 0.65:
            end = seconds(outage.start - timedelta(seconds=rng.uniform(20, 900)))
            releases.append(Release(sha1(rng), _attempts_ending(rng, end, _failures(rng)),
                                    "suspect"))
        if rng.random() < 0.35:
            start = seconds(random_instant(rng, outage.start, outage.end))
            end = seconds(start + timedelta(seconds=rng.uniform(40, 480)))
            releases.append(Release(sha1(rng), (Attempt(start, end, ok=True),), "fix"))
    kept = [r for r in releases if r.start >= earliest and r.end <= latest]
    return sorted(kept, key=lambda r: (r.start, r.sha))


def after(rng: random.Random, at: datetime, low: float = 0.3, high: float = 4.0) -> datetime:
    """When a delivery sent at ``at`` reached us: ``low`` to ``high`` seconds later, ms."""
    return at + timedelta(milliseconds=rng.randint(int(low * 1000), int(high * 1000)))


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- GitHub payloads ------------------------------------------------------------------


def _fixture(name: str) -> tuple[dict[str, str], dict[str, Any]]:
    raw = orjson.loads((FIXTURES / "github" / f"{name}.json").read_bytes())
    return dict(raw["headers"]), copy.deepcopy(raw["body"])


@dataclass
class _Hook:
    """One repository webhook: its id, content type and the repository it watches."""

    rng: random.Random
    repo: str
    form: bool
    hook_id: int
    redeliver: float  # chance that a delivery is redelivered by hand later
    deliveries: list[Recorded]

    def send(self, event: str, body: dict[str, Any], sent: datetime) -> None:
        headers, _ = _fixture("ping")
        headers.update({"X-GitHub-Event": event, "X-GitHub-Delivery": guid(self.rng),
                        "X-GitHub-Hook-ID": str(self.hook_id)})
        data = orjson.dumps(body)
        if self.form:
            # "payload=<JSON>", url-encoded; the signature covers these exact bytes.
            data = b"payload=" + urllib.parse.quote_plus(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            headers["Content-Type"] = "application/json"
        first = Recorded("github", after(self.rng, sent), headers, data,
                         key=f"github:{headers['X-GitHub-Delivery']}")
        self.deliveries.append(first)
        if self.rng.random() < self.redeliver:
            # Redelivered from "Recent deliveries": same GUID, same bytes, later.
            self.deliveries.append(first.retried(
                first.received_at + timedelta(seconds=self.rng.uniform(60, 7200))))

    def repository(self, body: dict[str, Any]) -> None:
        name = self.repo.split("/", 1)[1]
        body["repository"].update(name=name, full_name=self.repo,
                                  html_url=f"https://github.com/{self.repo}",
                                  url=f"https://api.github.com/repos/{self.repo}")


def _workflow_run(hook: _Hook, action: str, *, run_id: int, attempt: int, name: str,
                  sha: str, branch: str, created: datetime, started: datetime,
                  updated: datetime, conclusion: str | None) -> dict[str, Any]:
    _, body = _fixture("workflow_run_failure")
    hook.repository(body)
    body["action"] = action
    body["workflow"].update(name=name, path=f".github/workflows/{name}.yml")
    run = body["workflow_run"]
    run.update(
        id=run_id, name=name, head_branch=branch, head_sha=sha, run_attempt=attempt,
        status={"requested": "queued", "in_progress": "in_progress"}.get(action, "completed"),
        conclusion=conclusion, created_at=rfc3339(created), run_started_at=rfc3339(started),
        updated_at=rfc3339(updated), event="push",
        html_url=f"https://github.com/{hook.repo}/actions/runs/{run_id}",
    )
    run["head_commit"]["id"] = sha
    for key in ("repository", "head_repository"):
        run[key]["full_name"] = hook.repo
    return body


def _run(hook: _Hook, name: str, sha: str, branch: str,
         attempts: tuple[Attempt, ...]) -> None:
    """One workflow run and its re-runs: requested, in_progress, completed per attempt."""
    run_id = hook.rng.randrange(10**9, 10**10)
    created = attempts[0].start
    for number, attempt in enumerate(attempts, start=1):
        moving = seconds(attempt.start + timedelta(seconds=hook.rng.uniform(2, 15)))
        done = seconds(attempt.end + timedelta(seconds=hook.rng.uniform(1, 10)))
        conclusion = "success" if attempt.ok else hook.rng.choice(
            ["failure", "failure", "timed_out"])
        for action, at, outcome in (("requested", attempt.start, None),
                                    ("in_progress", moving, None),
                                    ("completed", done, conclusion)):
            body = _workflow_run(hook, action, run_id=run_id, attempt=number, name=name,
                                 sha=sha, branch=branch, created=created,
                                 started=attempt.start, updated=at, conclusion=outcome)
            hook.send("workflow_run", body, at)


def _deployment(hook: _Hook, sha: str, environment: str, attempt: Attempt) -> None:
    """The deployment a deploy job attempt creates, and its statuses."""
    _, body = _fixture("deployment_status_success")
    hook.repository(body)
    deployment = body["deployment"]
    dep_id = hook.rng.randrange(10**9, 10**10)
    created = seconds(attempt.start + timedelta(seconds=hook.rng.uniform(5, 25)))
    deployment.update(id=dep_id, sha=sha, ref="main", environment=environment,
                      original_environment=environment,
                      production_environment=environment == "production",
                      created_at=rfc3339(created), updated_at=rfc3339(created),
                      url=f"https://api.github.com/repos/{hook.repo}/deployments/{dep_id}")
    hook.send("deployment", {"action": "created", "deployment": copy.deepcopy(deployment),
                             "repository": body["repository"],
                             "organization": body["organization"], "sender": body["sender"]},
              created)
    moving = seconds(created + timedelta(seconds=hook.rng.uniform(1, 8)))
    final = "success" if attempt.ok else hook.rng.choice(["failure", "failure", "error"])
    for state, at in (("queued", created), ("in_progress", moving), (final, attempt.end)):
        status_body = copy.deepcopy(body)
        status = status_body["deployment_status"]
        status.update(id=hook.rng.randrange(10**9, 10**10), state=state,
                      environment=environment, created_at=rfc3339(at), updated_at=rfc3339(at),
                      description={"success": "Deployment finished successfully.",
                                   "failure": "Deploy failed: readiness probe timed out",
                                   "error": "Deploy errored"}.get(state, ""))
        status_body["deployment"]["updated_at"] = rfc3339(at)
        hook.send("deployment_status", status_body, at)


def repository(service: str) -> str:
    return f"acme/{service}-api"


def github_actions(plan: ServicePlan, rng: random.Random) -> Observation:
    """Each release is a push to main: a ``ci`` run (a failed CI is re-run until it
    passes), then a ``deploy`` run whose job deploys to production (to staging first
    when the repository has one), re-run after each failed attempt."""
    repo = repository(plan.name)
    hook = _Hook(rng, repo, form=rng.random() < 0.3, hook_id=rng.randrange(10**8, 10**9),
                 redeliver=rng.choice([0.0, 0.03, 0.1]), deliveries=[])
    staging = rng.random() < 0.4
    for release in plan_releases(plan, rng):
        ci_end = seconds(release.start - timedelta(seconds=rng.uniform(30, 300)))
        ci_attempts = _attempts_ending(rng, ci_end, 1 if rng.random() < 0.2 else 0)
        if ci_attempts[0].start < plan.begin:
            continue
        _run(hook, "ci", release.sha, "main", ci_attempts)
        _run(hook, "deploy", release.sha, "main", release.attempts)
        for attempt in release.attempts:
            if staging:
                half = seconds(attempt.start + (attempt.end - attempt.start) / 2)
                step = Attempt(attempt.start, half, ok=True)
                _deployment(hook, release.sha, "staging", step)
                attempt = Attempt(step.end, attempt.end, attempt.ok)
            _deployment(hook, release.sha, "production", attempt)
    return Observation(deliveries=hook.deliveries,
                       services={plan.name: [repo, f"{repo}/*"]})


MODELS: dict[str, Model] = {"github-actions": github_actions}
