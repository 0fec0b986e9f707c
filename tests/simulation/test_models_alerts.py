"""The alerting tool models (Prometheus + Alertmanager, Grafana, PagerDuty) keep their own
invariants, and every delivery they produce is one the real adapter understands.

The reports a model returns are the ground truth the simulation checks Hindsight against,
so here they are re-derived independently from the delivered bytes (TIMELINE.md "A
signal", rules 4 and 8, "The four moments"), and the tools' documented behaviours are
checked on the bytes: Alertmanager's byte-identical repeats with Go's zero ``endsAt``
(docs/configuration.md ``repeat_interval``; ``alert.Alerts``), Prometheus' evaluation
ticks and ``for`` (rules/alerting.go), the group's ``group_wait`` (dispatch/dispatch.go),
Grafana's timestamp header (grafana/alerting http/hmac.go), PagerDuty's per-incident
order and at-least-once copies (developer-docs webhooks/02-Behavior.md).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from ingest.delivery import Delivery, keep_headers
from ingest.sources import understand
from tests.scenarios.payloads import Recorded
from tests.simulation.tools import alertmanager as am
from tests.simulation.tools import all_models
from tests.simulation.tools import grafana as gf
from tests.simulation.tools import pagerduty as pd
from tests.simulation.world import (
    EPOCH,
    Observation,
    Outage,
    Report,
    ServicePlan,
    plan_outages,
)

MODELS: dict[str, Callable[[ServicePlan, random.Random], Observation]] = {
    **am.MODELS, **gf.MODELS, **pd.MODELS}
SEEDS = range(80)
ALERT_SOURCES = ("alertmanager", "grafana")


def plan(seed: int) -> ServicePlan:
    rng = random.Random(seed)
    return plan_outages(rng, f"t{seed:04d}-checkout", EPOCH + timedelta(days=seed % 300),
                        days=rng.randint(2, 6))


_CACHE: dict[tuple[str, int], tuple[ServicePlan, Observation]] = {}


def observe(name: str, seed: int) -> tuple[ServicePlan, Observation]:
    if (name, seed) not in _CACHE:
        p = plan(seed)
        _CACHE[(name, seed)] = (p, MODELS[name](p, random.Random(seed * 7919 + 1)))
    return _CACHE[(name, seed)]


def every(name: str) -> list[tuple[ServicePlan, Observation]]:
    return [observe(name, seed) for seed in SEEDS]


def time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def body(d: Recorded) -> Any:
    return orjson.loads(d.body)


def outage_of(p: ServicePlan, at: datetime, slack: timedelta = timedelta(minutes=40)) -> Outage:
    found = [o for o in p.outages if o.start <= at <= o.end + slack]
    assert len(found) == 1, f"{at} is in no outage of {p.outages}"
    return found[0]


def test_models_are_registered() -> None:
    """The world draws its monitors from ``all_models``: ours are there by name."""
    assert set(MODELS) <= set(all_models())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_delivery_is_understood_by_the_adapter(name: str) -> None:
    """Each delivery, as Hindsight would store it, maps to signals (no 400/422/415); an
    alert delivery yields one signal per alert, a PagerDuty incident event one."""
    seen = 0
    for _, obs in every(name):
        for d in obs.deliveries:
            delivery = Delivery(d.source, d.body, d.received_at, keep_headers(d.headers))
            got = understand(delivery)
            assert got.outcome == "understood", (got.error, d.body[:300])
            if d.source in ALERT_SOURCES:
                assert len(got.signals) == len(body(d)["alerts"])
            elif body(d)["event"]["event_type"] != "incident.annotated":
                assert len(got.signals) == 1
            orjson.loads(d.line())  # importable, with the credential the tool would send
            seen += 1
    assert seen > 50


def _alert_truth(p: ServicePlan, deliveries: list[Recorded]) -> dict[Outage, tuple[Any, ...]]:
    """TIMELINE.md restated over Alertmanager-shaped bytes: started = earliest startsAt,
    detected = earliest notification (Grafana's timestamp header, else the receipt),
    resolved = latest endsAt once every alert was sent resolved."""
    started: dict[Outage, datetime] = {}
    detected: dict[Outage, datetime] = {}
    state: dict[Outage, dict[tuple[str, datetime], datetime | None]] = {}
    for d in deliveries:
        stamp = keep_headers(d.headers).get("x-grafana-alerting-timestamp")
        notified = (datetime.fromtimestamp(int(stamp), UTC) if stamp else d.received_at)
        for alert in body(d)["alerts"]:
            starts = time(alert["startsAt"])
            o = outage_of(p, starts)
            started[o] = min(started.get(o, starts), starts)
            detected[o] = min(detected.get(o, notified), notified)
            subject = (alert["fingerprint"], starts)
            if alert["status"] == "resolved":
                state.setdefault(o, {})[subject] = time(alert["endsAt"])
            else:
                assert alert["endsAt"] == am.GO_ZERO_TIME  # a firing alert's end is unknown
                state.setdefault(o, {}).setdefault(subject, None)
    out = {}
    for o in started:
        ends = list(state[o].values())
        resolved = None if None in ends else max(e for e in ends if e is not None)
        out[o] = (started[o], detected[o], resolved, None)
    return out


def _pager_truth(p: ServicePlan, deliveries: list[Recorded]) -> dict[Outage, tuple[Any, ...]]:
    """Per outage: the incidents' triggering times, the first receipt of a triggered
    event, the last resolution and the first acknowledgement (``occurred_at``)."""
    events = [(d, body(d)["event"]) for d in deliveries]
    home: dict[str, Outage] = {}
    for _, e in events:
        if e["event_type"] == "incident.triggered":
            home[e["data"]["id"]] = outage_of(p, time(e["occurred_at"]))
    moments: dict[Outage, dict[str, list[datetime]]] = {}
    for d, e in events:
        ident = e["data"]["id"] if "incident" not in e["data"] else e["data"]["incident"]["id"]
        m = moments.setdefault(home[ident], {})
        kind = e["event_type"].split(".")[1]
        m.setdefault(kind, []).append(time(e["occurred_at"]))
        if kind == "triggered":
            m.setdefault("received", []).append(d.received_at)
    return {o: (min(m["triggered"]), min(m["received"]), max(m["resolved"]),
                min(m["acknowledged"]) if "acknowledged" in m else None)
            for o, m in moments.items()}


def _as_tuple(r: Report) -> tuple[Any, ...]:
    return (r.started, r.detected, r.resolved, r.acknowledged)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_reports_restate_what_the_bytes_say(name: str) -> None:
    """A report for every outage the deliveries speak of, none for another, and each
    report's moments are what the payloads state (re-derived here from the bytes)."""
    reported = 0
    for p, obs in every(name):
        for source, derive in (("alertmanager", _alert_truth), ("grafana", _alert_truth),
                               ("pagerduty", _pager_truth)):
            mine = [d for d in obs.deliveries if d.source == source]
            truth = derive(p, mine) if mine else {}
            # The combined model reports its webhook and its PagerDuty deliveries apart.
            reports = {r.outage: _as_tuple(r) for r in obs.reports if mine
                       and (source == "pagerduty") == r.monitor.endswith("pagerduty")}
            assert reports == truth, (name, p.name, source)
            reported += len(truth)
    assert reported > 20


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_time_is_whole_milliseconds(name: str) -> None:
    """Tools send ms at most here, and the reports use the same values."""
    for _, obs in every(name):
        for r in obs.reports:
            for t in (r.started, r.detected, r.resolved, r.acknowledged):
                assert t is None or t.microsecond % 1000 == 0
        for d in obs.deliveries:
            assert d.received_at.microsecond % 1000 == 0


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_are_deterministic(name: str) -> None:
    """A world is reproducible from its seed: same plan and stream, same bytes."""
    for seed in range(5):
        p = plan(seed)
        a, b = (MODELS[name](p, random.Random(seed)) for _ in range(2))
        assert [(d.body, d.received_at, d.headers, d.key) for d in a.deliveries] == [
            (d.body, d.received_at, d.headers, d.key) for d in b.deliveries]
        assert a.reports == b.reports


@pytest.mark.parametrize("name", ["prometheus-alertmanager", "grafana",
                                  "prometheus-alertmanager-pagerduty"])
def test_alert_groups_follow_the_notification_pipeline(name: str) -> None:
    """Alertmanager's documented sending pattern, seen in the bytes: the same alert states
    are the same bytes (repeats; alertmanager ``alert.Alerts`` zeroes a firing endsAt),
    a resolved alert is sent resolved once and then dropped from the group, and a
    retry repeats its original exactly. Each pattern occurs somewhere."""
    repeats = retries = first_seen_resolved = 0
    for _, obs in every(name):
        alerts = [d for d in obs.deliveries if d.source in ALERT_SOURCES]
        by_key = {d.key: d for d in alerts}
        by_state: dict[tuple[Any, ...], bytes] = {}
        seen_firing: set[tuple[str, str]] = set()
        resolved_sent: set[tuple[str, str]] = set()
        for d in sorted(alerts, key=lambda d: d.received_at):
            if d.retry_of is not None:
                original = by_key[d.retry_of]
                assert (original.body, original.headers) == (d.body, d.headers)
                assert timedelta(0) < d.received_at - original.received_at < timedelta(minutes=1)
                retries += 1
                continue
            state = tuple((a["fingerprint"], a["status"], a["startsAt"], a["endsAt"])
                          for a in body(d)["alerts"])
            if state in by_state and name != "grafana":
                assert by_state[state] == d.body
                repeats += 1
            elif state in by_state:
                repeats += by_state[state] == d.body  # Grafana: the latest values ride along
            by_state.setdefault(state, d.body)
            for a in body(d)["alerts"]:
                subject = (a["fingerprint"], a["startsAt"])
                if a["status"] == "firing":
                    seen_firing.add(subject)
                else:
                    assert subject not in resolved_sent, "a resolved alert is sent once"
                    resolved_sent.add(subject)
                    first_seen_resolved += subject not in seen_firing
    assert repeats > 0
    assert first_seen_resolved > 0
    if name != "grafana":
        assert retries > 0


def test_prometheus_rule_fires_after_for_on_evaluation_ticks() -> None:
    """rules/alerting.go: pending at the first evaluation the condition holds (ActiveAt),
    firing at the first evaluation with ts - ActiveAt >= for (FiredAt = startsAt),
    resolved at the first evaluation it no longer holds; still pending when it clears,
    it is never sent."""
    rule = am.Rule(interval=timedelta(seconds=30), hold=timedelta(minutes=5),
                   offset=timedelta(milliseconds=1234))
    t0 = datetime(2025, 3, 14, 10, 0, tzinfo=UTC)
    tick = t0 + timedelta(milliseconds=1234)
    assert rule.next_tick(t0) == tick
    assert rule.next_tick(tick) == tick
    assert rule.firing(t0, t0 + timedelta(minutes=20)) == (
        tick, tick + timedelta(minutes=5), tick + timedelta(minutes=20))
    assert rule.firing(t0, tick + timedelta(minutes=5)) is None  # gone at the firing tick
    assert rule.firing(t0, tick + timedelta(minutes=5, milliseconds=1)) == (
        tick, tick + timedelta(minutes=5), tick + timedelta(minutes=5, seconds=30))
    assert rule.firing(t0 + timedelta(seconds=2), t0 + timedelta(seconds=20)) is None
    uneven = am.Rule(interval=timedelta(seconds=60), hold=timedelta(seconds=90))
    assert uneven.firing(t0, t0 + timedelta(hours=1)) == (t0, t0 + timedelta(minutes=2),
                                                          t0 + timedelta(hours=1))
    instant = am.Rule(interval=timedelta(seconds=15), hold=timedelta(0))
    assert instant.firing(t0 + timedelta(seconds=1), t0 + timedelta(seconds=16)) == (
        t0 + timedelta(seconds=15), t0 + timedelta(seconds=15), t0 + timedelta(seconds=30))


def test_outage_shorter_than_for_is_never_reported() -> None:
    """A rule with ``for: 5m`` never fires for a 3-minute outage: no delivery, no report."""
    begin = datetime(2025, 3, 10, tzinfo=UTC)
    short = Outage("t-short", begin + timedelta(hours=4), begin + timedelta(hours=4, minutes=3), 0)
    p = ServicePlan("t-short", (short,), begin, begin + timedelta(days=3))
    setup = am.Setup(rule=am.Rule(timedelta(seconds=15), timedelta(minutes=5)),
                     route=am.Route(timedelta(seconds=30), timedelta(minutes=5),
                                    timedelta(hours=4)),
                     alertname="HighErrorRate", instances=("10.42.1.2:8080",),
                     severity="critical")
    for seed in range(20):
        obs = am.prometheus_alertmanager(p, random.Random(seed), setup)
        assert obs.deliveries == []
        assert obs.reports == []


def _life(fp: str, start: datetime, end: datetime) -> am.Life:
    return am.Life(labels=(("alertname", "X"), ("instance", fp)), annotations=(),
                   outage=Outage("t", start, end, 0), starts_at=start, ends_at=end,
                   seen=start, seen_resolved=end)


def test_dispatch_group_wait_interval_and_resolution() -> None:
    """dispatch.go and dedup_stage.go on a hand-timed group: the first flush waits
    group_wait after the group's first alert; an alert that fired and resolved within it
    is sent resolved beside a firing one; a new firing alert waits for the next
    group_interval tick; the last resolution is sent, then the group is gone and the next
    alert waits group_wait again; an unchanged group is re-sent after repeat_interval."""
    t = datetime(2025, 3, 14, 10, 0, tzinfo=UTC)
    m = timedelta(minutes=1)
    route = am.Route(group_wait=timedelta(seconds=30), group_interval=5 * m,
                     repeat_interval=20 * m)
    lives = [_life("a", t, t + 60 * m), _life("b", t + timedelta(seconds=5),
                                              t + timedelta(seconds=20)),
             _life("c", t + 7 * m, t + 9 * m), _life("d", t + 200 * m, t + 201 * m)]
    got = [(f.at - t, [(life.labels[1][1], done) for life, done in f.alerts], f.reason)
           for f in am.dispatch(lives, route)]
    s30 = timedelta(seconds=30)
    assert got == [
        (s30, [("a", False), ("b", True)], "first"),
        (s30 + 10 * m, [("a", False), ("c", True)], "new resolved"),  # c fired and cleared
        (s30 + 35 * m, [("a", False)], "repeat"),  # first tick strictly after 20 min
        (s30 + 60 * m, [("a", True)], "all resolved"),
        (200 * m + s30, [("d", False)], "first"),
        (200 * m + s30 + 5 * m, [("d", True)], "all resolved"),
    ]
    # Everything resolved before group_wait: nothing is sent at all.
    assert am.dispatch([_life("e", t, t + timedelta(seconds=10))], route) == []


def test_go_encodings() -> None:
    """Go's RFC3339Nano (trailing zeros dropped, Z for a zero offset), encoding/json's
    HTML escaping, and prometheus/common's FNV-1a label-set fingerprint."""
    moment = datetime(2025, 3, 14, 9, 58, 12, 340000, tzinfo=UTC)
    assert am.go_time(moment) == "2025-03-14T09:58:12.34Z"
    assert am.go_time(moment.replace(microsecond=0)) == "2025-03-14T09:58:12Z"
    assert am.go_time(moment, ZoneInfo("Europe/Paris")) == "2025-03-14T10:58:12.34+01:00"
    assert am.go_json({"u": "a&b<c>"}, newline=True) == b'{"u":"a\\u0026b\\u003cc\\u003e"}\n'
    assert am.fingerprint({}) == "cbf29ce484222325"  # FNV-1a offset basis: empty label set
    assert am.fingerprint({"a": "1"}) != am.fingerprint({"a": "1", "b": ""})


def test_grafana_timestamp_header_is_the_send_second() -> None:
    """http/hmac.go: with a timestamp header configured, its value is the send time in
    Unix seconds; the report's detection is that second (the tool's own send time),
    without it the receipt. Both set-ups occur."""
    kinds = set()
    for p, obs in every("grafana"):
        stamps = [d.headers.get(gf.TIMESTAMP_HEADER) for d in obs.deliveries]
        kinds |= {s is not None for s in stamps}
        for d, stamp in zip(obs.deliveries, stamps, strict=True):
            if stamp is not None:
                sent = datetime.fromtimestamp(int(stamp), UTC)
                assert sent <= d.received_at < sent + timedelta(seconds=4)
        for r in obs.reports:
            firsts = [d for d in obs.deliveries if any(
                outage_of(p, time(a["startsAt"])) == r.outage for a in body(d)["alerts"])]
            first = min(firsts, key=lambda d: d.received_at)
            stamp = first.headers.get(gf.TIMESTAMP_HEADER)
            assert r.detected == (datetime.fromtimestamp(int(stamp), UTC) if stamp
                                  else first.received_at)
    assert kinds == {True, False}


def test_pagerduty_sends_each_incident_in_order() -> None:
    """02-Behavior.md: an incident's webhooks arrive in the order generated, a retry
    (same X-Webhook-Id, same event) holding back the ones after it; the acknowledgement
    falls between triggering and resolution."""
    retries = 0
    for name in ("pagerduty", "prometheus-alertmanager-pagerduty"):
        for _, obs in every(name):
            paged = [d for d in obs.deliveries if d.source == "pagerduty"]
            by_key = {d.key: d for d in paged}
            incidents: dict[str, list[tuple[datetime, datetime, str]]] = {}
            for d in paged:
                if d.retry_of is not None:
                    original = by_key[d.retry_of]
                    assert original.body == d.body
                    assert original.headers["X-Webhook-Id"] == d.headers["X-Webhook-Id"]
                    assert d.received_at > original.received_at + timedelta(seconds=5)
                    retries += 1
                e = body(d)["event"]
                ident = e["data"].get("incident", {}).get("id") or e["data"]["id"]
                incidents.setdefault(ident, []).append(
                    (d.received_at, time(e["occurred_at"]), e["event_type"]))
            for events in incidents.values():
                events.sort()
                occurred = [o for _, o, _ in events]
                assert occurred == sorted(occurred)
                kinds = [k for _, _, k in events]
                assert kinds[0] == "incident.triggered"
                assert kinds[-1] == "incident.resolved"
    assert retries > 0


def test_pagerduty_acknowledgement_arrives_before_the_alert() -> None:
    """TIMELINE.md rule 11's case as the tools produce it: PagerDuty pages on a short
    group_wait, a responder acknowledges, and the acknowledgement reaches Hindsight before
    Alertmanager's own first firing delivery (its webhook route waits longer). The
    acknowledgement still lies inside its outage's reported failing span."""
    early = 0
    for p, obs in every("prometheus-alertmanager-pagerduty"):
        for r in obs.reports:
            if r.acknowledged is not None:
                assert r.started <= r.acknowledged <= (r.resolved or r.acknowledged)
        for outage in p.outages:
            fired = [d.received_at for d in obs.deliveries if d.source == "alertmanager"
                     and any(a["status"] == "firing" and outage_of(p, time(a["startsAt"]))
                             == outage for a in body(d)["alerts"])]
            acks = [d.received_at for d in obs.deliveries if d.source == "pagerduty"
                    and body(d)["event"]["event_type"] == "incident.acknowledged"
                    and outage_of(p, time(body(d)["event"]["occurred_at"])) == outage]
            early += bool(fired and acks and min(acks) < min(fired))
    assert early > 0


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_subject_belongs_to_its_service(name: str) -> None:
    """TIMELINE.md "service": an alert's ``service`` label names the world's service; a
    PagerDuty service (the subject) is mapped to it by the ``[services]`` globs the model
    returns, one PagerDuty service per installation."""
    for p, obs in every(name):
        for d in obs.deliveries:
            signals = understand(Delivery(d.source, d.body, d.received_at,
                                          keep_headers(d.headers))).signals
            for signal in signals:
                if d.source == "pagerduty":
                    assert signal.subject in obs.services[p.name]
                    assert signal.subject != p.name
                else:
                    assert signal.service == p.name
