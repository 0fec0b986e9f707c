"""The deploy-tool models (GitHub, GitLab, Argo CD) and the native signal models keep their
own promises, and the real ingest path accepts everything they send.

Each delivery goes the way an import does (``Recorded.line()``, ``parse_import_line``,
``authenticate``, ``understand``), so a model that sends what Hindsight cannot read, or
signs it wrongly, fails here rather than as a mysterious incident mismatch.
"""

from __future__ import annotations

import random
import urllib.parse
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from functools import cache
from typing import Any

import orjson
import pytest

from ingest.auth import Credentials, Request, authenticate
from ingest.delivery import Delivery, keep_headers
from ingest.signals import Signal
from ingest.sources import understand
from ingest.webhooks import delivery_id, parse_import_line
from tests.helpers import SECRETS, TOKENS
from tests.scenarios.payloads import Recorded
from tests.simulation.tools import argocd, github, gitlab, native
from tests.simulation.world import EPOCH, Model, Observation, ServicePlan, plan_outages

DEPLOYS: dict[str, Model] = {**github.MODELS, **gitlab.MODELS}
WATCHERS: dict[str, Model] = {**argocd.MODELS, **native.MODELS}
ALL: dict[str, Model] = {**DEPLOYS, **WATCHERS}
SEEDS = range(20)


@cache
def _worlds(name: str) -> tuple[tuple[ServicePlan, Observation], ...]:
    model = ALL[name]
    out = []
    for seed in SEEDS:
        plan = plan_outages(random.Random(seed), f"s{seed}-checkout", EPOCH, days=4)
        out.append((plan, model(plan, random.Random(f"{name}:{seed}"))))
    return tuple(out)


def worlds(name: str) -> Iterator[tuple[ServicePlan, Observation]]:
    yield from _worlds(name)


def read(recorded: Recorded) -> tuple[str, list[Signal]]:
    """What ingest makes of the delivery, imported with the tool's own credential:
    (outcome, signals)."""
    return _read(recorded.line())


@cache
def _read(line: bytes) -> tuple[str, list[Signal]]:
    source, received_at, headers, query, body = parse_import_line(line)
    lower = {k.lower(): v for k, v in headers.items()}
    creds = Credentials(token=TOKENS.get(source), secrets=(SECRETS.get(source, ""),))
    problem = authenticate(source, Request(body, lower, query, received_at), creds, 300)
    assert problem is None, f"{line[:200]!r}: {problem}"
    understood = understand(Delivery(source, body, received_at, keep_headers(lower)))
    return understood.outcome, list(understood.signals)


def is_form(recorded: Recorded) -> bool:
    return recorded.headers.get("Content-Type") == "application/x-www-form-urlencoded"


def payload(recorded: Recorded) -> Any:
    if is_form(recorded):
        return orjson.loads(urllib.parse.parse_qs(recorded.body.decode())["payload"][0])
    return orjson.loads(recorded.body)


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_json_delivery_is_authentic_and_understood(name: str) -> None:
    """API.md: an authentic delivery the adapter understands is answered 202."""
    seen = 0
    for _, observation in worlds(name):
        for recorded in observation.deliveries:
            if is_form(recorded):
                continue
            outcome, _ = read(recorded)
            assert outcome == "understood", (name, recorded.body[:300])
            seen += 1
    assert seen > 30


def test_github_form_encoded_deliveries_are_understood() -> None:
    """docs.github.com/en/webhooks/using-webhooks/creating-webhooks ("Content type"): a
    webhook set to application/x-www-form-urlencoded sends ``payload=<JSON>``, signed over
    the raw form body; Hindsight must read it like the JSON (issue 10, item 10)."""
    forms = [r for _, o in worlds("github-actions") for r in o.deliveries if is_form(r)]
    assert forms
    for recorded in forms:
        outcome, signals = read(recorded)
        assert outcome == "understood", recorded.body[:200]
        json_twin = Recorded("github", recorded.received_at,
                             dict(recorded.headers, **{"Content-Type": "application/json"}),
                             orjson.dumps(payload(recorded)))
        assert [s.to_json() for s in signals] == [s.to_json() for s in read(json_twin)[1]]


@pytest.mark.parametrize("name", sorted(DEPLOYS))
def test_deploy_tools_report_no_outage(name: str) -> None:
    """TIMELINE.md rule 7: deploys never open incidents; the model claims none, and
    every signal its deliveries carry is a deploy (a change)."""
    for _, observation in worlds(name):
        assert observation.reports == []
        for recorded in observation.deliveries:
            if not is_form(recorded):
                assert all(s.kind == "deploy" for s in read(recorded)[1])


@pytest.mark.parametrize("name", [*sorted(DEPLOYS), "argocd"])
def test_every_failed_deploy_is_followed_by_a_success_of_its_subject(name: str) -> None:
    """TIMELINE.md rule 7: a failed deploy is a risk until a later deploy of the same
    subject succeeds; the worlds end with every risk cleared, and some have one."""
    failures = 0
    for _, observation in worlds(name):
        by_subject: dict[str, list[Signal]] = defaultdict(list)
        for recorded in observation.deliveries:
            if not is_form(recorded):
                for signal in read(recorded)[1]:
                    if signal.kind == "deploy" and signal.action in ("failed", "succeeded"):
                        by_subject[signal.subject].append(signal)
        for subject, signals in by_subject.items():
            for failed in (s for s in signals if s.action == "failed"):
                failures += 1
                assert any(s.action == "succeeded" and s.occurred_at > failed.occurred_at
                           for s in signals), (subject, failed.occurred_at)
    assert failures > 0


def test_github_failed_runs_are_rerun_until_they_pass() -> None:
    """docs.github.com re-running workflows: a re-run keeps the run id and increments
    ``run_attempt``; each failed run here ends with a successful attempt of the same run."""
    attempts = 0
    for _, observation in worlds("github-actions"):
        runs: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for recorded in observation.deliveries:
            if recorded.retry_of or recorded.headers["X-GitHub-Event"] != "workflow_run":
                continue
            body = payload(recorded)
            if body["action"] == "completed":
                run = body["workflow_run"]
                runs[run["id"]].append((run["run_attempt"], run["conclusion"]))
        for outcomes in runs.values():
            outcomes.sort()
            assert [n for n, _ in outcomes] == list(range(1, len(outcomes) + 1))
            assert outcomes[-1][1] == "success"
            assert all(c in ("failure", "timed_out") for _, c in outcomes[:-1])
            attempts += len(outcomes) > 1
    assert attempts > 0


def test_gitlab_failed_pipelines_pass_after_a_retried_job() -> None:
    """docs.gitlab.com pipeline events: a hook per status change; a retried job sends
    the same pipeline back to running, then to success."""
    retried = 0
    for _, observation in worlds("gitlab-ci"):
        pipelines: dict[int, list[str]] = defaultdict(list)
        for recorded in observation.deliveries:
            body = orjson.loads(recorded.body)
            if recorded.retry_of is None and body["object_kind"] == "pipeline":
                pipelines[body["object_attributes"]["id"]].append(
                    body["object_attributes"]["status"])
        for statuses in pipelines.values():
            assert statuses[:2] == ["pending", "running"]
            assert statuses[-1] == "success"
            retried += "failed" in statuses
    assert retried > 0


@pytest.mark.parametrize("name", [*sorted(DEPLOYS), "argocd"])
def test_some_deploys_finish_minutes_before_an_outage(name: str) -> None:
    """TIMELINE.md rule 7: a deploy shortly before impact is a candidate contributing
    factor; the worlds must hold such deploys (and none after the world ends)."""
    candidates = 0
    for plan, observation in worlds(name):
        finished = [s.occurred_at for r in observation.deliveries if not is_form(r)
                    for s in read(r)[1] if s.kind == "deploy" and s.action == "succeeded"]
        assert all(plan.begin <= at < plan.end for at in finished)
        candidates += sum(any(timedelta(0) < o.start - at <= timedelta(minutes=15)
                              for at in finished) for o in plan.outages)
    assert candidates > 0


def test_redeliveries_repeat_the_tools_own_identity() -> None:
    """GitHub: a redelivery has the same X-GitHub-Delivery and bytes; GitLab: a resend has
    the same Idempotency-Key and bytes but a new X-Gitlab-Event-UUID; Standard Webhooks:
    a retry has the same webhook-id and bytes; Argo CD: the same bytes 1 to 5 s later.
    A copy always arrives after the attempt it repeats, and ids are unique otherwise."""
    header = {"github": "X-GitHub-Delivery", "gitlab": "Idempotency-Key",
              "native": "webhook-id"}
    copies: dict[str, int] = defaultdict(int)
    for name in sorted(ALL):
        for _, observation in worlds(name):
            by_key = {r.key: r for r in observation.deliveries}
            assert len(by_key) == len(observation.deliveries)
            originals = [r for r in observation.deliveries if r.retry_of is None]
            for recorded in observation.deliveries:
                if recorded.retry_of is None:
                    continue
                first = by_key[recorded.retry_of]
                copies[recorded.source] += 1
                assert recorded.body == first.body
                assert recorded.received_at > first.received_at
                if recorded.source in header:
                    assert recorded.headers[header[recorded.source]] == \
                        first.headers[header[recorded.source]]
                if recorded.source == "gitlab":
                    assert recorded.headers["X-Gitlab-Event-UUID"] != \
                        first.headers["X-Gitlab-Event-UUID"]
                if recorded.source == "argocd":
                    assert recorded.received_at - first.received_at <= timedelta(seconds=5)
            if observation.deliveries and observation.deliveries[0].source in header:
                name_ = header[observation.deliveries[0].source]
                ids = [r.headers[name_] for r in originals]
                assert len(set(ids)) == len(ids)
    assert set(copies) == {"github", "gitlab", "argocd", "native"}


def test_gitlab_resends_share_hindsights_delivery_id() -> None:
    """A GitLab resend (see the model's docstring) keeps its ``Idempotency-Key``, "consistent
    across webhook retries" (GitLab's webhook docs, "Delivery headers"), and gets a new
    X-Gitlab-Event-UUID: Hindsight's dedup key is the Idempotency-Key, so the two copies are
    one delivery (ARCHITECTURE.md, "Idempotent appends")."""
    for _, observation in worlds("gitlab-ci"):
        by_key = {r.key: r for r in observation.deliveries}
        for recorded in observation.deliveries:
            if recorded.retry_of:
                first = by_key[recorded.retry_of]
                lower = {k.lower(): v for k, v in recorded.headers.items()}
                first_lower = {k.lower(): v for k, v in first.headers.items()}
                assert lower["x-gitlab-event-uuid"] != first_lower["x-gitlab-event-uuid"]
                assert delivery_id("gitlab", lower, recorded.body) == delivery_id(
                    "gitlab", first_lower, first.body)


@pytest.mark.parametrize("name", sorted(WATCHERS))
def test_reports_state_what_the_payloads_say(name: str) -> None:
    """TIMELINE.md "The four moments": per outage the model reports, the adapter's signals
    give the same start (earliest failing occurred_at), detection (earliest notified_at
    of a failing delivery), and resolution (the first ok after the last failure); no
    failing signal falls outside a reported outage. Times are whole milliseconds."""
    reported = 0
    for _plan, observation in worlds(name):
        signals = [s for r in observation.deliveries for s in read(r)[1]
                   if s.kind != "deploy"]
        failing = [s for s in signals if s.state == "failing"]
        claimed: set[int] = set()
        for report in observation.reports:
            reported += 1
            outage = report.outage
            assert report.monitor == name or report.monitor.startswith(name)
            low, high = outage.start, outage.end + timedelta(hours=2)
            mine = [s for s in failing if low <= s.occurred_at < high]
            assert mine, report
            claimed.update(id(s) for s in mine)
            assert report.started == min(s.occurred_at for s in mine)
            assert report.detected == min(s.notified_at for s in mine)
            last = max(s.occurred_at for s in mine)
            oks = [s.occurred_at for s in signals if s.state == "ok" and s.occurred_at > last]
            assert report.resolved == min(oks)
            assert outage.start <= report.started <= report.detected
            assert report.resolved is not None
            assert report.resolved >= outage.end
            for at in (report.started, report.detected, report.resolved):
                assert at.microsecond % 1000 == 0
        assert all(id(s) in claimed for s in failing), "a failing signal with no report"
        assert len({r.outage.key for r in observation.reports}) == len(observation.reports)
    assert reported > 5


@pytest.mark.parametrize("name", sorted(ALL))
def test_a_world_is_reproducible_from_its_seed(name: str) -> None:
    """The property replays failures by seed: the same seed gives the same bytes."""
    plan = plan_outages(random.Random(7), "s7-checkout", EPOCH, days=4)
    first = ALL[name](plan, random.Random(11))
    again = ALL[name](plan, random.Random(11))
    assert [r.line() for r in first.deliveries] == [r.line() for r in again.deliveries]
    assert first.reports == again.reports


def test_native_posts_use_every_documented_shape_and_time_form() -> None:
    """README "Posting your own signals": one signal, a list, or {"signals": [...]};
    occurred_at optional (receipt time) and with any RFC 3339 precision, e.g. ".5"."""
    shapes, forms = set(), set()
    for name in native.MODELS:
        for _, observation in worlds(name):
            for recorded in observation.deliveries:
                body = orjson.loads(recorded.body)
                shapes.add(type(body).__name__ + ("+signals" if "signals" in body else ""))
                one = body[0] if isinstance(body, list) else body.get("signals", [body])[0]
                stamp = one.get("occurred_at")
                forms.add("none" if stamp is None else ".5" if stamp.endswith(".5Z")
                          else "+00:00" if stamp.endswith("+00:00") else "Z")
    assert shapes == {"dict", "list", "dict+signals"}
    assert forms == {"none", ".5", "+00:00", "Z"}
