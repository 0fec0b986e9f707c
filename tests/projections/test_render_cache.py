"""A cached render equals a fresh one (TIMELINE.md rule 11: order and memory never change
an answer; the timeline is a function of the facts, not of their arrival nor of what a
render remembered).

The live engine keeps, per subject line, what rendering it gave (``Line.view``) and, per
incident, the last render's sorted entries (``IncidentState.memo``), so that a batch
that changes a few subjects of a huge incident re-renders only those. These tests fold
random logs (repeats and storms of them, recoveries, failing periods, late and
out-of-order facts, acknowledgements, deploys, manual events including merges and
resolutions, retention) step by step into a caching engine and an engine that keeps no
cache (a rebuild's: ``drop_renders``), and require every ``take_changes`` to be equal,
and each changed incident to equal ``render_incident(..., cache=False)`` of its state.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from ingest.signals import Signal
from projections.engine.fold import Changes, Engine, EngineConfig
from projections.engine.model import Incident, TimelineEntry
from projections.engine.timeline import render_incident
from tests.projections.test_engine_properties import concrete_log, configs, feed, steps
from tests.projections.test_engine_support import sig, t


def _fresh(engine: Engine, incident: Incident) -> Incident:
    """The incident rendered from its state, reading and keeping no cache."""
    state = engine._incidents[incident.id]  # (the state a render reads)
    started, resolved = state.span()
    deploys = []
    for service in sorted(state.services):
        svc = engine._services.get(service)
        if svc is None:
            continue
        deploys += [d for d in svc.deploys
                    if started - engine._config.deploy_lookback
                    <= d.signal.occurred_at and (resolved is None
                                                 or d.signal.occurred_at <= resolved)]
    return render_incident(state, deploys,
                           default_severity=engine._config.default_severity,
                           deploy_lookback=engine._config.deploy_lookback,
                           cache=False)


def _same_changes(cached: Changes, fresh: Changes) -> None:
    assert cached.incidents == fresh.incidents
    assert cached.merged == fresh.merged
    assert cached.joins == fresh.joins


@pytest.mark.parametrize("size", [1, 3])  # after every event; several lines at once
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, plan=steps)
def test_a_cached_render_equals_a_fresh_one_whatever_the_batching(
    size: int, config: EngineConfig, plan: list[Any]
) -> None:
    log = concrete_log(config, plan)
    cached, uncached = Engine(config), Engine(config)
    uncached.drop_renders()  # keeps no render cache from here on
    for start in range(0, len(log), size):
        feed(cached, log[start:start + size])
        feed(uncached, log[start:start + size])
        a, b = cached.take_changes(), uncached.take_changes()
        uncached.drop_renders()
        _same_changes(a, b)
        for incident in (*a.incidents, *a.merged):
            if incident.id in cached._incidents:  # (not archived)
                assert incident == _fresh(cached, incident)
    assert cached.incidents() == uncached.incidents()


def _storm(engine: Engine, subjects: int) -> Incident:
    for i in range(subjects):
        engine.apply_delivery(i + 1, t(0, i) + timedelta(seconds=30), [
            sig(f"HighLatency instance={i}", "failing", at=t(0, i), service="checkout")])
    (incident,) = engine.take_changes().incidents
    return incident


def test_unchanged_entries_are_the_same_objects_and_changed_ones_new() -> None:
    """A render after a small change reuses every entry whose value is unchanged (the
    same object) and makes new objects only for the entries that changed."""
    engine = Engine(EngineConfig())
    before = _storm(engine, 40)
    # A repeat of subject 3 (its entry counts one more), a recovery of subject 7, and a
    # new subject.
    repeat = sig("HighLatency instance=3", "failing", at=t(0, 3), notified=t(30),
                 service="checkout")
    recovery = sig("HighLatency instance=7", "ok", at=t(20), service="checkout")
    new = sig("HighLatency instance=new", "failing", at=t(21), service="checkout")
    engine.apply_delivery(100, t(30), [repeat, recovery, new])
    (after,) = engine.take_changes().incidents
    assert after == _fresh(engine, after)
    def key(e: TimelineEntry) -> tuple[Any, ...]:
        return (e.at, e.position, e.state, e.marker)

    old = {key(e): e for e in before.timeline}
    reused = [e for e in after.timeline if old.get(key(e)) is e]
    changed = [e for e in after.timeline if old.get(key(e)) is not e]
    for e in changed:
        assert all(e is not o for o in before.timeline)
        was = old.get(key(e))
        assert was is None or was != e  # a new object only for a new value
    assert {e.subject for e in changed} == {
        "HighLatency instance=3", "HighLatency instance=7", "HighLatency instance=new"}
    # All but subject 3's entry (one more repeat); subject 7's failure is unchanged:
    # its line changed (a recovery entry), its failure entry did not.
    assert len(reused) == len(before.timeline) - 1
    # Nothing changed since: the next render is made of the very same entries.
    engine.apply_delivery(101, t(31), [sig("elsewhere", "ok", at=t(31), service="other")])
    engine.take_changes()
    engine._touch(after.id)  # (a render without a change)
    (again,) = engine.take_changes().incidents
    assert again == after
    assert all(a is b for a, b in zip(again.timeline, after.timeline, strict=True))


def test_markers_move_without_marking_the_cached_entries() -> None:
    """``started`` and ``resolved`` mark copies: when the first failure or the last
    recovery changes, the entry that held the marker shows none (TIMELINE.md: each
    moment marked exactly once)."""
    engine = Engine(EngineConfig())
    engine.apply_delivery(1, t(1), [sig("a", "failing", at=t(1), service="checkout")])
    engine.apply_delivery(2, t(2), [sig("b", "failing", at=t(2), service="checkout")])
    engine.take_changes()
    late: list[Signal] = [sig("c", "failing", at=t(0), notified=t(3), service="checkout")]
    engine.apply_delivery(3, t(3), late)  # a failure dated before the first one
    engine.apply_delivery(4, t(4), [sig("a", "ok", at=t(4), service="checkout"),
                                    sig("b", "ok", at=t(4), service="checkout")])
    engine.apply_delivery(5, t(5), [sig("c", "ok", at=t(5), service="checkout")])
    (incident,) = engine.take_changes().incidents
    assert incident == _fresh(engine, incident)
    assert [e.subject for e in incident.timeline if e.marker == "started"] == ["c"]
    assert [e.subject for e in incident.timeline if e.marker == "resolved"] == ["c"]
    engine.apply_delivery(6, t(6), [sig("b", "failing", at=t(6), service="checkout")])
    engine.apply_delivery(7, t(7), [sig("b", "ok", at=t(7), service="checkout")])
    (incident,) = engine.take_changes().incidents
    assert incident == _fresh(engine, incident)
    resolved = [e for e in incident.timeline if e.marker == "resolved"]
    assert [(e.subject, e.at) for e in resolved] == [("b", t(7))]
