"""Prometheus alerting rules in front of Alertmanager's webhook receiver.

What is modelled, and where each behaviour is documented or implemented (read in
prometheus/prometheus and prometheus/alertmanager, main branch, 2026-08):

Prometheus (``rules/alerting.go`` ``AlertingRule.Eval``, ``rules/group.go``,
``rules/manager.go`` ``SendAlerts``; docs/configuration/alerting_rules.md):

- a rule group is evaluated every ``interval`` at ``EvalTimestamp``: multiples of the
  interval since the Unix epoch plus a fixed per-group offset (a hash of the group);
- the first evaluation at which the expression returns a series makes the alert pending
  with ``ActiveAt`` = that evaluation's time; it fires at the first evaluation with
  ``ts - ActiveAt >= for`` (``FiredAt`` = ts). A pending alert whose series disappears
  is deleted: an outage shorter than ``for`` never fires;
- a firing alert whose series disappears is resolved at that evaluation
  (``ResolvedAt`` = ts);
- ``SendAlerts`` sends ``StartsAt = FiredAt`` and ``EndsAt = ResolvedAt`` once resolved
  (else ``ValidUntil``, a time in the future, which Alertmanager never shows for a firing
  alert). Real evaluation times carry nanoseconds of offset; ours are whole
  milliseconds (the world's rule: every time a model writes is ms or coarser).

Alertmanager (``dispatch/dispatch.go`` ``aggrGroup``, ``notify/dedup_stage.go``
``needsUpdate``, ``notify/retry_stage.go``, ``notify/webhook/webhook.go`` ``Message``,
``template/template.go`` ``Data``, ``alert/alert.go``; docs/configuration.md
``<route>`` and ``<webhook_config>``):

- an aggregation group is created by its first alert; it first flushes ``group_wait``
  later, then every ``group_interval`` (the timer is reset at each flush);
- a flush notifies when (``needsUpdate``): nothing was notified yet and something fires;
  a firing alert is new since the last notification; everything resolved and the last
  notification had firing alerts; ``send_resolved`` and a resolved alert is new; or
  ``repeat_interval`` has passed since the last notification (strictly). Else nothing
  is sent. The notification log survives the group (``data.retention``: 120 h);
- every notification lists every alert of the group, each with its own status; resolved
  alerts are deleted from the group after every flush (sent or not), and an empty group
  is destroyed: an alert that fired and resolved before ``group_wait`` arrives with
  status ``resolved`` and both ``startsAt`` and ``endsAt`` when another alert of the
  group fires, and not at all otherwise;
- a firing alert's ``endsAt`` is Go's zero time ``0001-01-01T00:00:00Z``, so a firing
  group sent again every ``repeat_interval`` is the same bytes;
- the body is ``json.Encoder`` output (HTML-escaped, trailing newline) of the version 4
  ``Message``: ``template.Data`` fields, then ``version``, ``groupKey``,
  ``truncatedAlerts``; alerts sorted by ``job``, ``instance``, then label set
  (``AlertSlice.Less``); ``fingerprint`` is the label set's FNV-1a hash
  (prometheus/common ``model/signature.go``);
- the notifier retries a failed attempt with exponential backoff from 500 ms
  (cenkalti/backoff): when our answer is lost, the same bytes come again seconds later.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from tests.scenarios.payloads import Recorded
from tests.simulation.world import Observation, Outage, Report, ServicePlan

SOURCE = "alertmanager"
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)


# --- Go's encodings --------------------------------------------------------------------

def go_time(value: datetime, zone: tzinfo = UTC) -> str:
    """Go's ``time.Time`` JSON form (``RFC3339Nano``): trailing zeros of the fraction
    dropped, ``Z`` for UTC, else the zone's offset."""
    local = value.astimezone(zone)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if local.microsecond:
        text += f".{local.microsecond:06d}".rstrip("0")
    offset = local.utcoffset() or timedelta(0)
    if offset == timedelta(0):  # layout "Z07:00" writes Z for any zero offset
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def go_json(value: object, newline: bool = False) -> bytes:
    """``encoding/json``: compact, HTML characters escaped, non-ASCII kept as UTF-8.
    Dicts are written in the order given: build structs in field order and sort maps."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return (text + ("\n" if newline else "")).encode()


def fingerprint(labels: Mapping[str, str]) -> str:
    """``model.LabelSet.Fingerprint().String()``: FNV-1a 64 over the sorted names and
    values, each followed by the separator byte 0xff, as 16 hex digits."""
    value = 0xCBF29CE484222325
    for name in sorted(labels):
        for chunk in (name.encode(), labels[name].encode()):
            for byte in chunk + b"\xff":
                value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def label_set(labels: Mapping[str, str]) -> str:
    """``model.LabelSet.String()``: ``{a="1", b="2"}``, sorted."""
    return "{" + ", ".join(f'{k}={json.dumps(labels[k])}' for k in sorted(labels)) + "}"


# --- Time helpers ----------------------------------------------------------------------

def msec(value: datetime) -> int:
    return (value - _UNIX) // timedelta(milliseconds=1)


def at_ms(value: int) -> datetime:
    return _UNIX + timedelta(milliseconds=value)


def uniform_ms(rng: random.Random, low: float, high: float) -> timedelta:
    """A delay drawn in [low, high) seconds, whole milliseconds."""
    return timedelta(milliseconds=rng.randrange(int(low * 1000), max(int(high * 1000), int(low * 1000) + 1)))


def key_of(rng: random.Random, model: str) -> str:
    return f"{model}:{rng.getrandbits(64):016x}"


# --- Prometheus: evaluation ticks and the rule's ``for`` --------------------------------

@dataclass(frozen=True)
class Rule:
    """An alerting rule's group ``interval`` and ``for``, and the group's evaluation
    offset (``EvalTimestamp``), all whole milliseconds."""

    interval: timedelta
    hold: timedelta  # the rule's ``for``
    offset: timedelta = timedelta(0)

    def next_tick(self, t: datetime) -> datetime:
        """The first evaluation at or after ``t``."""
        step = self.interval // timedelta(milliseconds=1)
        off = self.offset // timedelta(milliseconds=1)
        k = -((off - msec(t)) // step)  # ceil((t - off) / step)
        return at_ms(off + k * step)

    def firing(self, broken_from: datetime, broken_until: datetime
               ) -> tuple[datetime, datetime, datetime] | None:
        """(``ActiveAt``, ``FiredAt``, ``ResolvedAt``) of the alert whose condition holds
        at evaluations in [broken_from, broken_until), or None when it never fires."""
        active = self.next_tick(broken_from)
        if active >= broken_until:
            return None  # no evaluation saw it
        steps = -(-self.hold // self.interval)  # first tick with ts - ActiveAt >= for
        fired = active + steps * self.interval
        if fired >= broken_until:
            return None  # still pending when the series disappeared: deleted, never sent
        return active, fired, self.next_tick(broken_until)


# --- Alertmanager: aggregation group, dedup stage, webhook body -------------------------

@dataclass(frozen=True)
class Life:
    """One alert's firing period as Alertmanager learns it: ``starts_at``/``ends_at`` as
    sent (FiredAt/ResolvedAt), ``seen``/``seen_resolved`` when they reached it."""

    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]
    outage: Outage
    starts_at: datetime
    ends_at: datetime
    seen: datetime
    seen_resolved: datetime
    generator_url: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint(dict(self.labels))

    def sort_key(self) -> tuple[tuple[int, str], tuple[int, str], list[tuple[str, str]]]:
        """``AlertSlice.Less``: by ``job``, then ``instance`` (missing sorts last), then
        the label set."""
        labels = dict(self.labels)
        job, inst = labels.get("job"), labels.get("instance")
        return ((0, job) if job is not None else (1, ""),
                (0, inst) if inst is not None else (1, ""), sorted(self.labels))


@dataclass(frozen=True)
class Route:
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    send_resolved: bool = True  # the webhook_config default


@dataclass(frozen=True)
class Flush:
    """A notification: the flush's time and every alert of the group with whether it was
    resolved at that time."""

    at: datetime
    alerts: tuple[tuple[Life, bool], ...]
    reason: str


@dataclass
class _Entry:
    firing: frozenset[str]
    resolved: frozenset[str]
    at: datetime


def _needs_update(entry: _Entry | None, firing: frozenset[str], resolved: frozenset[str],
                  route: Route, now: datetime) -> str | None:
    """``DedupStage.needsUpdate`` (notify/dedup_stage.go), reason or None."""
    if entry is None:
        return "first" if firing else None
    if not firing <= entry.firing:
        return "first" if not entry.firing else "new alerts"
    if not firing:
        return "all resolved" if entry.firing else None
    if route.send_resolved and not resolved <= entry.resolved:
        return "new resolved"
    if entry.at < now - route.repeat_interval:
        return "repeat"
    return None


def dispatch(lives: Iterable[Life], route: Route) -> list[Flush]:
    """The notifications one aggregation group sends for these alert lives."""
    events: list[tuple[datetime, int, Life]] = []
    for life in lives:
        events.append((life.seen, 0, life))
        events.append((life.seen_resolved, 1, life))
    events.sort(key=lambda e: (e[0], e[1], e[2].fingerprint))
    members: dict[str, tuple[Life, bool]] = {}
    entry: _Entry | None = None
    next_flush: datetime | None = None
    out: list[Flush] = []
    i = 0
    while i < len(events) or next_flush is not None:
        if next_flush is not None and (i >= len(events) or events[i][0] > next_flush):
            now = next_flush
            firing = frozenset(fp for fp, (_, done) in members.items() if not done)
            resolved = frozenset(fp for fp, (_, done) in members.items() if done)
            reason = _needs_update(entry, firing, resolved, route, now)
            if reason is not None:
                alerts = sorted(members.values(), key=lambda m: m[0].sort_key())
                out.append(Flush(now, tuple(alerts), reason))
                entry = _Entry(firing, resolved, now)
            for fp in resolved:
                del members[fp]
            next_flush = now + route.group_interval if members else None
            continue
        t, kind, life = events[i]
        i += 1
        if kind == 0:
            if next_flush is None:  # a new aggregation group
                next_flush = t + route.group_wait
                if life.starts_at + route.group_wait < t:
                    next_flush = t  # "old enough for immediate flush"
            members[life.fingerprint] = (life, False)
        else:
            members[life.fingerprint] = (life, True)
    return out


def common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """Pairs every map shares (``template.Data`` commonLabels / commonAnnotations)."""
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def alert_json(life: Life, resolved: bool, zone: tzinfo = UTC) -> dict[str, object]:
    """``template.Alert`` in field order (template/template.go)."""
    return {
        "status": "resolved" if resolved else "firing",
        "labels": dict(sorted(life.labels)),
        "annotations": dict(sorted(life.annotations)),
        "startsAt": go_time(life.starts_at, zone),
        "endsAt": go_time(life.ends_at, zone) if resolved else GO_ZERO_TIME,
        "generatorURL": life.generator_url,
        "fingerprint": life.fingerprint,
    }


def template_data(flush: Flush, receiver: str, group_labels: Mapping[str, str],
                  external_url: str, zone: tzinfo = UTC) -> dict[str, object]:
    """``template.Data`` in field order."""
    lives = [life for life, _ in flush.alerts]
    return {
        "receiver": receiver,
        "status": "firing" if any(not done for _, done in flush.alerts) else "resolved",
        "alerts": [alert_json(life, done, zone) for life, done in flush.alerts],
        "groupLabels": dict(sorted(group_labels.items())),
        "commonLabels": dict(sorted(common([dict(x.labels) for x in lives]).items())),
        "commonAnnotations": dict(sorted(common([dict(x.annotations) for x in lives]).items())),
        "externalURL": external_url,
    }


# --- The model -------------------------------------------------------------------------

ALERTNAMES = ("HighErrorRate", "HighLatencyP99", "TargetDown", "KubePodCrashLooping")


@dataclass(frozen=True)
class Setup:
    """One Prometheus + Alertmanager installation watching one service."""

    rule: Rule
    route: Route
    alertname: str
    instances: tuple[str, ...]
    severity: str
    retry_chance: float = 0.05


def draw_setup(rng: random.Random) -> Setup:
    interval = timedelta(seconds=rng.choice([15, 30, 60]))
    return Setup(
        rule=Rule(interval=interval,
                  hold=timedelta(minutes=rng.choice([0, 1, 2, 5])),
                  offset=timedelta(milliseconds=rng.randrange(interval // timedelta(milliseconds=1)))),
        route=Route(group_wait=timedelta(seconds=rng.choice([10, 30, 60])),
                    group_interval=timedelta(minutes=rng.choice([1, 2, 5])),
                    repeat_interval=timedelta(minutes=rng.choice([20, 60, 240]))),
        alertname=rng.choice(ALERTNAMES),
        instances=tuple(sorted({f"10.42.{rng.randrange(1, 9)}.{rng.randrange(2, 250)}:8080"
                                for _ in range(rng.randint(1, 4))})),
        severity=rng.choice(["critical", "warning"]),
    )


BLIP = "10.42.9.9:8080"


def breakages(rng: random.Random, outage: Outage, instances: Sequence[str], rule: Rule
              ) -> dict[str, tuple[datetime, datetime]]:
    """Each instance's own broken period, inside the outage: it starts in the outage's
    first quarter and ends in its last, so every instance is broken over the middle half
    (no gap in the outage's coverage: TIMELINE.md rule 2's reopen window is never
    needed). Some instances stay healthy; at least one breaks. Sometimes one more
    instance only blips: broken for ``for`` plus a few evaluations, well inside the time
    every other alert fires, so it may fire and resolve between two flushes (first seen
    already resolved, TIMELINE.md rule 4)."""
    span = outage.end - outage.start
    hit = [i for i in instances if rng.random() < 0.8] or [rng.choice(list(instances))]
    out: dict[str, tuple[datetime, datetime]] = {}
    for instance in hit:
        start = outage.start + uniform_ms(rng, 0, span.total_seconds() / 4)
        end = outage.end - uniform_ms(rng, 0, span.total_seconds() / 4)
        out[instance] = (start, end)
    length = rule.hold + uniform_ms(rng, 2 * rule.interval.total_seconds(), 240)
    lo = outage.start + span / 4 + rule.hold + 2 * rule.interval
    hi = outage.end - span / 4 - length
    if rng.random() < 0.4 and hi > lo:
        begin = lo + uniform_ms(rng, 0, (hi - lo).total_seconds())
        out[BLIP] = (begin, begin + length)
    return out


def prometheus_lives(rng: random.Random, plan: ServicePlan, setup: Setup,
                     transit: tuple[float, float] = (0.005, 1.5)) -> list[Life]:
    """Every alert the rule sends for ``plan``'s outages, with when each state reached
    Alertmanager (the notifier's queue and the network: ``transit`` seconds)."""
    lives: list[Life] = []
    job = f"{plan.name}-api"
    for outage in plan.outages:
        for instance, (start, end) in sorted(breakages(rng, outage, setup.instances, setup.rule).items()):
            fired = setup.rule.firing(start, end)
            if fired is None:
                continue
            _, starts_at, ends_at = fired
            labels = {"alertname": setup.alertname, "instance": instance, "job": job,
                      "namespace": "prod", "service": plan.name, "severity": setup.severity}
            annotations = {
                "summary": f"{setup.alertname} on {instance}",
                "description": f"{job} on {instance} breaches {setup.alertname}.",
                "runbook_url": f"https://runbooks.example.com/{setup.alertname.lower()}",
            }
            lives.append(Life(
                labels=tuple(sorted(labels.items())),
                annotations=tuple(sorted(annotations.items())),
                outage=outage, starts_at=starts_at, ends_at=ends_at,
                seen=starts_at + uniform_ms(rng, *transit),
                seen_resolved=ends_at + uniform_ms(rng, *transit),
                generator_url=("http://prometheus.monitoring.svc:9090/graph?g0.expr="
                               f"{setup.alertname}%7Bjob%3D%22{job}%22%7D&g0.tab=1"),
            ))
    return lives


@dataclass(frozen=True)
class Sent:
    """One notification as delivered: its flush and the recorded copies (the first, then
    any retries)."""

    flush: Flush
    copies: tuple[Recorded, ...]

    @property
    def first(self) -> Recorded:
        return self.copies[0]


def deliver(rng: random.Random, model: str, source: str, flush: Flush, body: bytes,
            headers: dict[str, str], retry_chance: float,
            sent_at: datetime | None = None) -> Sent:
    """The webhook request for one flush: sent at ``sent_at`` (the flush), received a few
    ms to a few s later; sometimes our answer is lost and the notifier sends the same
    bytes again (backoff from 500 ms, after the failed attempt's own time)."""
    sent = sent_at or flush.at
    first = Recorded(source, sent + uniform_ms(rng, 0.003, 2.5), headers, body,
                     key=key_of(rng, model))
    copies = [first]
    if rng.random() < retry_chance:
        copies.append(first.retried(first.received_at + uniform_ms(rng, 0.5, 6.0)))
    return Sent(flush, tuple(copies))


def report_from(model: str, sent: Sequence[Sent], outages: Iterable[Outage],
                notified: Mapping[str, datetime] | None = None) -> list[Report]:
    """What the notifications state per outage (TIMELINE.md, "A signal" and rule 4):

    - started: the earliest ``startsAt`` of the outage's alerts that were sent, firing or
      first seen already resolved (without a ``prometheus_url``, rule 8: startsAt);
    - detected: the earliest notification time of a delivery holding one of them (a
      recovery carrying its start is a failing period seen after the fact, notified when
      received; a later recovery of an alert already seen firing never comes first);
      ``notified`` maps a delivery key to its send time when the tool states one,
      else the receipt counts;
    - resolved: the latest ``endsAt`` once every alert sent has been sent resolved.
    """
    started: dict[Outage, datetime] = {}
    detected: dict[Outage, datetime] = {}
    ends: dict[Outage, dict[str, datetime | None]] = {}
    for s in sent:
        for copy in s.copies:
            when = (notified or {}).get(copy.key, copy.received_at)
            for life, done in s.flush.alerts:
                o = life.outage
                started[o] = min(started.get(o, life.starts_at), life.starts_at)
                detected[o] = min(detected.get(o, when), when)
                seen = ends.setdefault(o, {})
                if done:
                    seen[life.fingerprint] = life.ends_at
                else:
                    seen.setdefault(life.fingerprint, None)
    reports = []
    for outage in outages:
        if outage not in started:
            continue
        closes = list(ends[outage].values())
        resolved = (None if any(c is None for c in closes)
                    else max(c for c in closes if c is not None))
        reports.append(Report(outage, model, started[outage], detected[outage], resolved))
    return reports


RECEIVER = "hindsight"
EXTERNAL_URL = "http://alertmanager.monitoring.svc:9093"
HEADERS = {"Content-Type": "application/json", "User-Agent": "Alertmanager/0.28.1"}


def webhook_sends(rng: random.Random, model: str, plan: ServicePlan, setup: Setup,
                  lives: Sequence[Life]) -> list[Sent]:
    """The webhook receiver's deliveries: one aggregation group (``group_by: [alertname,
    service]`` under a route matching the service)."""
    group = {"alertname": setup.alertname, "service": plan.name}
    group_key = f'{{}}/{{service="{plan.name}"}}:{label_set(group)}'
    sends = []
    for flush in dispatch(lives, setup.route):
        message = {**template_data(flush, RECEIVER, group, EXTERNAL_URL),
                   "version": "4", "groupKey": group_key, "truncatedAlerts": 0}
        sends.append(deliver(rng, model, SOURCE, flush, go_json(message, newline=True),
                             dict(HEADERS), setup.retry_chance))
    return sends


def prometheus_alertmanager(plan: ServicePlan, rng: random.Random,
                            setup: Setup | None = None) -> Observation:
    """A Prometheus rule per instance of the service, grouped by Alertmanager and sent to
    Hindsight's webhook receiver."""
    setup = setup or draw_setup(rng)
    lives = prometheus_lives(rng, plan, setup)
    sends = webhook_sends(rng, "prometheus-alertmanager", plan, setup, lives)
    return Observation(
        deliveries=[c for s in sends for c in s.copies],
        reports=report_from("prometheus-alertmanager", sends, plan.outages),
    )


MODELS = {"prometheus-alertmanager": prometheus_alertmanager}
