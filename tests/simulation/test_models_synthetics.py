"""The Checkly, Pingdom and Gatus models keep their own promises, and the real ingest path
accepts everything they send (the same contract test_models_checks.py states for the
older uptime models).

- the Reports say what the bytes say: each test reads the payloads by the tool's
  documentation (Checkly ``started_at``, Pingdom ``state_changed_timestamp``, Gatus: no
  time, so the receipt) and finds the Report's moments there;
- the real adapter (import line, authentication, ``understand``) accepts every delivery,
  gives each subject to the right service, and its signals agree with the Reports.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from projections.engine.services import ServiceMap
from tests.simulation.test_models_checks import read
from tests.simulation.tools import all_models, checkly, gatus, pingdom
from tests.simulation.world import EPOCH, Model, Observation, ServicePlan, plan_outages

MODELS: dict[str, Model] = {**checkly.MODELS, **pingdom.MODELS, **gatus.MODELS}
SEEDS = range(60)
_CACHE: dict[str, list[tuple[ServicePlan, Observation]]] = {}


def worlds(name: str) -> Iterator[tuple[ServicePlan, Observation]]:
    for seed in SEEDS:
        rng = random.Random(seed)
        begin = EPOCH + timedelta(days=(seed * 37) % 365, hours=rng.randrange(24))
        plan = plan_outages(rng, f"s{seed}-checkout", begin, days=rng.randint(3, 6))
        yield plan, MODELS[name](plan, random.Random(f"{name}:{seed}"))


def observed(name: str) -> list[tuple[ServicePlan, Observation]]:
    if name not in _CACHE:
        _CACHE[name] = list(worlds(name))
    return _CACHE[name]


def test_the_world_draws_these_models() -> None:
    """worlds.py draws monitors from ``all_models``: these are registered by name."""
    assert set(MODELS) <= set(all_models())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_delivery_is_authentic_and_understood(name: str) -> None:
    """API.md: an authentic delivery the adapter understands is answered 202 (with its
    tool's credential: Checkly's signature and timestamp, the others' token)."""
    seen = 0
    for _, observation in observed(name):
        for recorded in observation.deliveries:
            outcome, signals = read(recorded)
            assert outcome == "understood", (name, recorded.body[:300])
            assert signals, (name, recorded.body[:300])
            seen += 1
    assert seen > 50


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_subject_belongs_to_its_service(name: str) -> None:
    """TIMELINE.md "service": the ``[services]`` mapping (Gatus), else the payload's own
    ``service:`` tag (Checkly, Pingdom)."""
    for plan, observation in observed(name):
        services = ServiceMap(observation.services)
        for recorded in observation.deliveries:
            for signal in read(recorded)[1]:
                assert services.service_of(signal) == plan.name, signal


@pytest.mark.parametrize("name", sorted(MODELS))
def test_reports_agree_with_the_adapters_signals(name: str) -> None:
    """TIMELINE.md "The four moments", read through the real adapter: per reported outage
    the failing signals give the Report's start and detection, the first ok after the last
    failure its resolution; no failing signal falls outside a reported outage."""
    reported = 0
    for _, observation in observed(name):
        signals = [s for r in observation.deliveries for s in read(r)[1]]
        failing = [s for s in signals if s.state == "failing"]
        claimed: set[int] = set()
        for report in observation.reports:
            reported += 1
            low = report.outage.start - timedelta(seconds=1)
            high = report.outage.end + timedelta(hours=29)
            mine = [s for s in failing if low <= s.occurred_at < high]
            assert mine, report
            claimed.update(id(s) for s in mine)
            assert report.started == min(s.occurred_at for s in mine)
            assert report.detected == min(s.notified_at for s in mine)
            last = max(s.occurred_at for s in mine)
            oks = [s.occurred_at for s in signals if s.state == "ok" and s.occurred_at >= last]
            assert report.resolved == min(oks)
        assert all(id(s) in claimed for s in failing), "a failing signal with no report"
    assert reported > 20


@pytest.mark.parametrize("name", sorted(MODELS))
def test_report_moments_are_ordered_whole_milliseconds(name: str) -> None:
    """world.py: times are whole ms or coarser; a failure starts at or before it is
    detected and resolves after the outage ends (Pingdom stamps whole seconds, so within
    the second that holds the end)."""
    for _, observation in observed(name):
        for report in observation.reports:
            assert report.resolved is not None
            for at in (report.started, report.detected, report.resolved):
                assert at.microsecond % 1000 == 0
                assert at.utcoffset() == timedelta(0)
            assert report.outage.start - timedelta(seconds=1) <= report.started
            assert report.started <= report.detected
            assert report.resolved >= report.outage.end - timedelta(seconds=1)
        keys = [r.outage.key for r in observation.reports]
        assert len(set(keys)) == len(keys)


def test_checkly_reports_state_the_alerting_runs_start() -> None:
    """Checkly's ``STARTED_AT`` is the run that crossed the threshold: the Report's start
    is the failure alert's ``started_at``, its resolution the recovery's."""
    for _, observation in observed("checkly"):
        bodies = [orjson.loads(d.body) for d in observation.deliveries]
        failures = [when(b["started_at"]) for b in bodies
                    if b["alert_type"] in ("ALERT_FAILURE", "ALERT_DEGRADED_FAILURE")]
        recoveries = [when(b["started_at"]) for b in bodies if b["alert_type"] == "ALERT_RECOVERY"]
        for report in observation.reports:
            assert report.started in failures
            assert report.resolved in recoveries


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_pingdom_reports_state_the_state_change_times() -> None:
    for _, observation in observed("pingdom"):
        changes = {(orjson.loads(d.body)["current_state"],
                    datetime.fromtimestamp(orjson.loads(d.body)["state_changed_timestamp"], UTC))
                   for d in observation.deliveries}
        for report in observation.reports:
            assert ({("DOWN", report.started), ("FAILING", report.started)} & changes)
            assert report.resolved is not None
            assert ({("UP", report.resolved), ("SUCCESS", report.resolved)} & changes)


def test_gatus_reports_are_dated_by_receipt_after_the_failure_threshold() -> None:
    """No placeholder holds a time: the Report's start is the TRIGGERED delivery's
    receipt, which comes ``failure-threshold`` evaluations into the outage."""
    for _, observation in observed("gatus"):
        for report in observation.reports:
            triggers = [d for d in observation.deliveries
                        if b'"TRIGGERED"' in d.body and d.received_at == report.started]
            assert triggers, report
            assert report.started >= report.outage.start


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_world_is_reproducible_from_its_seed(name: str) -> None:
    plan = plan_outages(random.Random(7), "s7-checkout", EPOCH, days=4)
    first = MODELS[name](plan, random.Random(11))
    again = MODELS[name](plan, random.Random(11))
    assert [r.line() for r in first.deliveries] == [r.line() for r in again.deliveries]
    assert first.reports == again.reports
