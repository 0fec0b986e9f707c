"""Properties of the fold: a restored engine folds like one fed the whole log, and the
same log always folds to the same bytes.

Logs are generated over a few services and subjects with random times, out of order,
with repeats and storms of them, failing periods, warnings, deploys, acknowledgements
and manual events (including merges across services and resolutions), so the properties
exercise joining, reopening, merging, splitting and retention. The engine's incremental
aggregates are checked against a recomputation from scratch after every fold.

A log of signals alone gives the same incidents in any arrival order (TIMELINE.md: the
log, not its arrival, decides), but for ids, titles and log positions.
"""

from __future__ import annotations

import random
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.manual import (
    IncidentAcknowledged,
    IncidentDeclared,
    IncidentImpactStartCorrected,
    IncidentMerged,
    IncidentNote,
    IncidentPublicitySet,
    IncidentResolved,
    IncidentSeveritySet,
    ManualEvent,
)
from ingest.signals import Signal
from projections.engine.fold import Engine, EngineConfig, signal_from_json, signal_to_json
from projections.engine.state import IncidentState, incident_state_from_json
from projections.engine.timeline import incident_span
from tests.projections.test_engine_support import deploy, sig, t

SUBJECTS = [  # (subject, service hint, source, kind)
    ("Checkout API", "checkout", "uptime-kuma", "uptime"),
    ("HighErrorRate", "checkout", "alertmanager", "alert"),
    ("shop.example.com", "checkout", "native", "ssl"),
    ("payment-reconciliation", "payments", "healthchecks", "cron"),
    ("card-gateway", "payments", "alertmanager", "alert"),
    ("Search API", None, "uptime-kuma", "uptime"),
]
minutes = st.integers(min_value=0, max_value=4 * 60)
seconds = st.integers(min_value=0, max_value=59)


@st.composite
def signals(draw: st.DrawFn) -> Signal:
    subject, service, source, kind = draw(st.sampled_from(SUBJECTS))
    at = t(draw(minutes), draw(seconds))
    delay = timedelta(seconds=draw(st.integers(min_value=-30, max_value=45 * 60)))
    what = draw(st.sampled_from(["failing", "failing", "ok", "ok", "period", "warning",
                                 "info", "deploy", "ack"]))
    if what == "deploy":
        return deploy(at, draw(st.sampled_from(["started", "succeeded", "failed",
                                                "pipeline_failed"])),
                      service=service or "search",
                      subject=draw(st.sampled_from(["acme/a production", "acme/b staging"])))
    if what == "ack":
        return sig(subject, "failing", at=at, source="pagerduty", kind="alert",
                   service=service, action="acknowledged")
    severity = draw(st.sampled_from([None, "P1", "P2", "P3", "P4"]))
    if what == "period":
        started = at - timedelta(minutes=draw(st.integers(min_value=0, max_value=90)))
        return sig(subject, "ok", at=at, notified=at + delay, source=source, kind=kind,
                   service=service, severity=severity, started=started)
    return sig(subject, what, at=at, notified=at + delay, source=source, kind=kind,
               service=service, severity=severity, summary=draw(st.sampled_from(["", "boom"])))


@st.composite
def manual_specs(draw: st.DrawFn) -> tuple[Any, ...]:
    """A manual event whose target is chosen when it is fed: ("declare", ...) or
    (kind, selector, event) where selector picks a held incident."""
    at = t(draw(minutes), draw(seconds))
    kind = draw(st.sampled_from(["declare", "note", "severity", "correct", "ack", "resolve",
                                 "merge", "merge", "publicity"]))
    if kind == "declare":
        return ("declare", IncidentDeclared(
            incident_id=draw(st.sampled_from(["decl-1", "decl-2"])),
            service=draw(st.sampled_from(["checkout", "payments", "elsewhere"])),
            title="Reported by users",
            severity=draw(st.sampled_from([None, "P1", "P2"])),
            started_at=draw(st.none() | st.just(at - timedelta(minutes=10))),
        ))
    selector = draw(st.integers(min_value=0, max_value=9))
    events: dict[str, ManualEvent] = {
        "note": IncidentNote(at=at, text="Rolled back"),
        "severity": IncidentSeveritySet(severity=draw(st.sampled_from(["P1", "P4"]))),
        "correct": IncidentImpactStartCorrected(started_at=at, evidence="logs"),
        "ack": IncidentAcknowledged(at=at),
        "resolve": IncidentResolved(resolved_at=at),
        "merge": IncidentMerged(other_id="tbd"),  # the other is chosen when fed
        "publicity": IncidentPublicitySet(public=draw(st.booleans())),
    }
    return (kind, selector, events[kind], draw(st.integers(min_value=0, max_value=9)))


steps = st.lists(
    st.one_of(
        st.tuples(st.just("delivery"), st.lists(signals(), min_size=1, max_size=3),
                  st.integers(min_value=0, max_value=60)),
        st.tuples(st.just("storm"), signals(), st.integers(min_value=2, max_value=40)),
        st.tuples(st.just("manual"), manual_specs(), st.integers(min_value=0, max_value=360)),
    ),
    min_size=3,
    max_size=50,
)
configs = st.builds(
    EngineConfig,
    default_severity=st.just({"healthchecks": "P2"}),
    retention=st.sampled_from([timedelta(days=30), timedelta(minutes=90),
                               timedelta(seconds=1)]),
    reopen_window=st.sampled_from([timedelta(minutes=15), timedelta(minutes=2)]),
)


def shifted_signal(signal: Signal, delta: timedelta) -> Signal:
    started = None if signal.started_at is None else signal.started_at + delta
    return replace(signal, occurred_at=signal.occurred_at + delta,
                   notified_at=signal.notified_at + delta, started_at=started)


def shifted_step(step: Any, delta: timedelta) -> Any:
    """A plan step moved ``delta`` later in time, every time it carries with it."""
    if not delta:
        return step
    if step[0] == "storm":
        return (step[0], shifted_signal(step[1], delta), step[2])
    if step[0] == "delivery":
        return (step[0], [shifted_signal(s, delta) for s in step[1]], step[2])
    spec = step[1]
    event = spec[1] if spec[0] == "declare" else spec[2]
    moved = event.model_copy(update={
        name: value + delta for name, value in event
        if name != "type" and isinstance(value, datetime)})
    spec = (spec[0], moved) if spec[0] == "declare" else (*spec[:2], moved, *spec[3:])
    return (step[0], spec, step[2], delta)


def concrete_log(config: EngineConfig, plan: list[Any],
                 days: list[int] | None = None) -> list[tuple[Any, ...]]:
    """Positions, receipt times and the incidents manual events target, resolved by
    folding once; the properties then feed these exact events to other engines.
    ``days``: how many days later each step happens (the plan's times span 4 hours)."""
    engine = Engine(config)
    log: list[tuple[Any, ...]] = []
    position = 0
    for number, step in enumerate(plan):
        if days is not None:
            step = shifted_step(step, timedelta(days=days[number]))
        position += 1
        if step[0] == "storm":  # one signal re-sent every 5 min, as Alertmanager does
            _, signal, count = step
            for n in range(count):
                again = replace(signal, notified_at=signal.notified_at + timedelta(minutes=5 * n))
                log.append(("delivery", position, again.notified_at, (again,)))
                feed(engine, log[-1:])
                position += 1
            continue
        if step[0] == "delivery":
            _, batch, lag = step
            received = max(s.notified_at for s in batch) + timedelta(seconds=lag)
            log.append(("delivery", position, received, tuple(batch)))
        else:
            _, spec, minute, *moved = step
            recorded = t(minute) + (moved[0] if moved else timedelta(0))
            if spec[0] == "declare":
                log.append(("manual", position, recorded, spec[1], None))
            else:
                held = sorted(i.id for i in engine.incidents())
                if not held:
                    continue
                target = held[spec[1] % len(held)]
                event = spec[2]
                if isinstance(event, IncidentMerged):
                    event = IncidentMerged(other_id=held[spec[3] % len(held)])
                log.append(("manual", position, recorded, event, target))
        feed(engine, log[-1:])
    return log


def feed(engine: Engine, events: list[tuple[Any, ...]]) -> None:
    for event in events:
        if event[0] == "delivery":
            engine.apply_delivery(event[1], event[2], event[3])
        else:
            engine.apply_manual(event[1], event[2], event[3], incident_id=event[4])


def engine_state(engine: Engine, incident_id: str) -> IncidentState:
    """An incident's state, read back from the engine's dumps (the public way in)."""
    for service in engine.services():
        for data in engine.dump(service)["incidents"]:
            if data["id"] == incident_id:
                return incident_state_from_json(data)
    raise KeyError(incident_id)


def dumps(engine: Engine) -> bytes:
    return orjson.dumps({s: engine.dump(s) for s in engine.services()})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, plan=steps, data=st.data())
def test_a_restored_engine_fed_the_rest_folds_like_a_straight_fold(
    config: EngineConfig, plan: list[Any], data: st.DataObject
) -> None:
    log = concrete_log(config, plan)
    straight = Engine(config)
    feed(straight, log)

    cut = data.draw(st.integers(min_value=0, max_value=len(log)), label="cut")
    before = Engine(config)
    feed(before, log[:cut])
    saved = orjson.loads(dumps(before))  # through bytes, as a checkpoint would be
    restored = Engine(config)
    for service, state in saved.items():
        restored.load(service, state)
    feed(restored, log[cut:])

    assert restored.incidents() == straight.incidents()
    straight.check_aggregates()
    restored.check_aggregates()
    assert restored.services() == straight.services()
    assert dumps(restored) == dumps(straight)
    for service in straight.services():
        assert restored.risks(service) == straight.risks(service)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, plan=steps)
def test_folding_the_same_log_twice_gives_the_same_bytes(
    config: EngineConfig, plan: list[Any]
) -> None:
    log = concrete_log(config, plan)
    first, second = Engine(config), Engine(config)
    feed(first, log)
    feed(second, log)
    assert first.incidents() == second.incidents()
    assert repr(first.incidents()) == repr(second.incidents())
    assert dumps(first) == dumps(second)


@settings(max_examples=150, deadline=None)
@given(config=configs, plan=steps)
def test_every_incident_has_each_known_moment_marked_once_and_spans_agree(
    config: EngineConfig, plan: list[Any]
) -> None:
    engine = Engine(config)
    feed(engine, concrete_log(config, plan))
    for incident in engine.incidents():
        markers = [e.marker for e in incident.timeline]
        moments = {"started": incident.started_at, "detected": incident.detected_at,
                   "acknowledged": incident.acknowledged_at, "resolved": incident.resolved_at}
        for name, when in moments.items():
            expected = 0 if when is None else 1
            assert markers.count(name) == expected, (name, incident)  # type: ignore[arg-type]
            if when is not None:
                (entry,) = [e for e in incident.timeline if e.marker == name]
                assert entry.at == when
        assert incident_span(engine_state(engine, incident.id)) == (
            incident.started_at, incident.resolved_at)
        keys = [(e.at, e.position) for e in incident.timeline]
        assert keys == sorted(keys)
        assert incident.detection_latency_seconds is None or (
            incident.detection_latency_seconds >= 0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=steps, data=st.data(),
       retention=st.sampled_from([timedelta(days=30), timedelta(days=7)]))
def test_a_log_spanning_90_days_folded_in_one_batch_emits_every_incident_as_it_ended(
    plan: list[Any], data: st.DataObject, retention: timedelta
) -> None:
    """Every incident a fold reports when taking changes after every event is reported
    by a fold of the whole log in one batch, with the same final value, even those
    retention dropped before the batch ended (a full rebuild in one batch)."""
    days = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=90),
                                     min_size=len(plan), max_size=len(plan)), label="days"))
    config = EngineConfig(retention=retention, default_severity={"healthchecks": "P2"})
    log = concrete_log(config, plan, days)

    stepwise = Engine(config)
    expected: dict[str, Any] = {}
    for event in log:
        feed(stepwise, [event])
        changes = stepwise.take_changes()
        for incident in (*changes.incidents, *changes.merged):
            expected[incident.id] = incident

    batch = Engine(config)
    feed(batch, log)
    changes = batch.take_changes()
    emitted = [i.id for i in (*changes.incidents, *changes.merged)]
    assert len(emitted) == len(set(emitted))  # each exactly once
    assert {i.id: i for i in (*changes.incidents, *changes.merged)} == expected
    assert all(i.merged_into is None for i in changes.incidents)
    assert all(i.merged_into is not None for i in changes.merged)


@given(signal=signals())
def test_signals_round_trip_through_json(signal: Signal) -> None:
    assert signal_from_json(orjson.loads(orjson.dumps(signal_to_json(signal)))) == signal


SIGNAL_SUBJECTS = [("A", "uptime-kuma", "uptime"), ("B", "alertmanager", "alert"),
                   ("C", "healthchecks", "cron")]


@st.composite
def signal_logs(draw: st.DrawFn) -> list[Signal]:
    """Signals at distinct minutes and distinct notification times (ties between
    subjects are broken by log position, which arrival order changes by definition),
    with repeats re-sent later, failing periods seen after the fact, overlapping each
    other and the service's other failures (an alert first seen resolved; an
    Alertmanager resolution carrying the start of the firing alert it ends, as its
    ``startsAt``), and PagerDuty acknowledgements of the service, which may arrive
    before the failure they belong to (TIMELINE.md rule 11). Each subject's own story
    is consistent (generated in time order: a resolution ends the subject's latest
    firing, with nothing of that subject in between)."""
    count = draw(st.integers(min_value=2, max_value=14))
    minute_list = sorted(draw(st.lists(st.integers(min_value=0, max_value=240),
                                       min_size=count, max_size=count, unique=True)))
    out: list[Signal] = []
    for n, minute in enumerate(minute_list):
        subject, source, kind = draw(st.sampled_from(SIGNAL_SUBJECTS))
        at = t(minute)
        notified = at + timedelta(seconds=n + 1)
        what = draw(st.sampled_from(["failing", "failing", "ok", "ok", "period", "deploy",
                                     "repeat", "ack", "resolution"]))
        if what == "repeat" and out and out[-1].kind != "deploy":
            out.append(replace(out[-1], notified_at=out[-1].notified_at
                               + timedelta(minutes=5, seconds=n)))
        elif what == "deploy":
            out.append(replace(deploy(at), notified_at=notified))
        elif what == "ack":
            out.append(sig("Checkout", "failing", at=at + timedelta(seconds=n + 1),
                           notified=notified, source="pagerduty", kind="alert",
                           action="acknowledged"))
        elif what == "period":
            # An alert first seen resolved, a subject of its own: its period may span
            # other subjects' failures, recoveries and periods.
            started = at - timedelta(minutes=draw(st.integers(min_value=0, max_value=60)),
                                     seconds=n + 1)  # never at another signal's minute
            out.append(sig(f"P{n}", "ok", at=at, notified=notified, source="alertmanager",
                           kind="alert", started=started))
        elif what == "resolution":
            # Alertmanager resolving B while it fires: the period from its startsAt.
            story = [s for s in out if s.source == "alertmanager" and s.subject == "B"]
            if story and story[-1].state == "failing" and story[-1].started_at is None:
                out.append(sig("B", "ok", at=at, notified=notified, source="alertmanager",
                               kind="alert", started=story[-1].occurred_at))
        else:
            state = "ok" if what == "ok" else "failing"
            out.append(sig(subject, state, at=at, notified=notified, source=source,
                           kind=kind))
    return out


def answers(engine: Engine) -> list[Any]:
    """The live incidents as values, without what arrival order names: ids, titles,
    log positions (and the timeline as a multiset: entries tie by position)."""
    return answers_of([i for i in engine.incidents() if i.merged_into is None])


def answers_of(incidents: list[Any]) -> list[Any]:
    found = []
    for incident in incidents:
        value = asdict(incident)
        del value["id"], value["title"]
        value["timeline"] = sorted(repr({k: v for k, v in e.items() if k != "position"})
                                    for e in value["timeline"])
        found.append(repr(value))
    return sorted(found)


@settings(max_examples=200, deadline=None)
@given(log=signal_logs(), seed=st.integers(min_value=0, max_value=2**32),
       window=st.sampled_from([timedelta(minutes=15), timedelta(minutes=2)]))
def test_signals_alone_give_the_same_incidents_in_any_arrival_order(
    log: list[Signal], seed: int, window: timedelta
) -> None:
    config = EngineConfig(reopen_window=window)
    shuffled = list(log)
    random.Random(seed).shuffle(shuffled)
    folds = []
    for order in (sorted(log, key=lambda s: s.notified_at), shuffled):
        engine = Engine(config)
        for position, signal in enumerate(order, start=1):
            engine.apply_delivery(position, signal.notified_at, [signal])
        engine.check_aggregates()
        folds.append(answers(engine))
    assert folds[0] == folds[1]


TINY, HUGE = timedelta(seconds=1), timedelta(days=3650)


def read_models(engine: Engine, log: list[tuple[Any, ...]]) -> dict[str, Any]:
    """What the read models hold after the projector wrote every event's changes:
    each incident's latest value, by id."""
    rows: dict[str, Any] = {}
    for event in log:
        feed(engine, [event])
        changes = engine.take_changes()
        for incident in (*changes.incidents, *changes.merged):
            rows[incident.id] = incident
    return rows


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=steps, data=st.data(),
       window=st.sampled_from([timedelta(minutes=15), timedelta(minutes=2)]))
def test_what_retention_forgets_never_changes_the_read_models(
    plan: list[Any], data: st.DataObject, window: timedelta
) -> None:
    """TIMELINE.md rule 11: whatever the projector forgets to save memory, the read
    models equal a fold that forgot nothing: late signals, deploys, acknowledgements and
    manual events about old incidents reach them, and no id is reused. With a retention
    of one second, every resolved incident leaves memory at once."""
    days = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=3),
                                     min_size=len(plan), max_size=len(plan)), label="days"))
    huge = EngineConfig(retention=HUGE, reopen_window=window,
                        default_severity={"healthchecks": "P2"})
    log = concrete_log(huge, plan, days)
    tiny = replace(huge, retention=TINY)
    forgetful = Engine(tiny)
    assert read_models(forgetful, log) == read_models(Engine(huge), log)
    forgetful.check_aggregates()


@settings(max_examples=200, deadline=None)
@given(log=signal_logs(), seed=st.integers(min_value=0, max_value=2**32),
       window=st.sampled_from([timedelta(minutes=15), timedelta(minutes=2)]))
def test_signals_in_any_order_give_the_same_incidents_whatever_retention_forgets(
    log: list[Signal], seed: int, window: timedelta
) -> None:
    """TIMELINE.md rule 11, order and memory at once: shuffled, with a retention of one
    second, the signals give the incidents a sorted fold that forgot nothing gives."""
    shuffled = list(log)
    random.Random(seed).shuffle(shuffled)
    results = []
    for order, retention in ((sorted(log, key=lambda s: s.notified_at), HUGE),
                             (shuffled, TINY)):
        engine = Engine(EngineConfig(reopen_window=window, retention=retention))
        rows = read_models(engine, [("delivery", position, s.notified_at, (s,))
                                    for position, s in enumerate(order, start=1)])
        live = [i for i in rows.values() if i.merged_into is None]
        results.append(answers_of(live))
    assert results[0] == results[1]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, plan=steps)
def test_signal_rows_name_each_signals_current_incident_whatever_the_batching(
    config: EngineConfig, plan: list[Any]
) -> None:
    """TIMELINE.md rule 11 (determinism): the ``signal_incidents`` rows written batch by
    batch equal those of one batch (a rebuild), and each member of a live incident (a
    failing report, an acknowledgement) has its row naming that incident, whatever
    merges and splits moved it since it was applied."""
    log = concrete_log(config, plan)
    stepwise = Engine(config)
    rows: dict[Any, str | None] = {}
    for event in log:
        feed(stepwise, [event])
        rows.update(stepwise.take_changes().joins)
    batch = Engine(config)
    feed(batch, log)
    assert batch.take_changes().joins == rows
    for incident in stepwise.incidents():
        if incident.merged_into is not None:
            continue
        state = engine_state(stepwise, incident.id)
        members = [f for r in state.reports() if r.failing for f in r.fact_ids()]
        assert all(rows[f] == incident.id for f in [*members, *state.acks]), incident.id
