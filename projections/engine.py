"""The incident engine: a deterministic fold of signals and manual events (TIMELINE.md).

No I/O, no clock, no database. The projector feeds it the log in order
(``apply_delivery`` for each delivery's signals, ``apply_manual`` for each manual event),
takes what changed (``take_changes``) into the read models, and checkpoints it per
service (``dump``/``load``). The same log always gives the same incidents, ids and
timelines, byte for byte.

What the engine decides, in arrival order, is *membership*: which incident a signal
joins (rules 1, 2 and 5), and the manual events each incident received. Everything read
off the members (moments, status, timeline) is rendered in time order by
``projections.timeline.render_incident``, so late signals land where they belong.
"""

from __future__ import annotations

import hashlib
from bisect import insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from ingest.manual import IncidentDeclared, IncidentMerged, ManualEvent
from ingest.signals import Kind, Severity, Signal, State, format_time
from projections import texts
from projections.facts import (
    DEPLOY_FAILURES,
    DEPLOY_OUTCOMES,
    Fact,
    FactId,
    SortKey,
    signal_from_json,
    signal_to_json,
)
from projections.model import Incident, Risk
from projections.services import ServiceMap
from projections.state import (
    IncidentState,
    ManualRecord,
    ServiceState,
    service_from_json,
    service_to_json,
)
from projections.timeline import incident_span, render_incident

__all__ = [
    "Changes",
    "Engine",
    "EngineConfig",
    "SubjectState",
    "signal_from_json",
    "signal_to_json",
]


@dataclass(frozen=True)
class EngineConfig:
    """- ``services``: service -> case-insensitive globs on subjects (``ServiceMap`` says
      which wins when several match: an exact name, then sorted service names).
    - ``default_severity``: per source, when a signal carries none; else P3.
    - ``reopen_window``: a failure this soon after a resolution reopens it (flapping).
    - ``deploy_lookback``: deploys this long before ``started_at`` are on the timeline.
    - ``retention``: resolved incidents whose ``resolved_at`` is older than this, measured
      from the service's latest receipt time (data time, never a clock), leave memory.
    """

    services: Mapping[str, Sequence[str]] = field(default_factory=dict)
    default_severity: Mapping[str, Severity] = field(default_factory=dict)
    reopen_window: timedelta = timedelta(minutes=15)
    deploy_lookback: timedelta = timedelta(hours=2)
    retention: timedelta = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class SubjectState:
    """A subject's state: its latest signal by (occurred_at, position, index)."""

    service: str
    source: str
    subject: str
    kind: Kind
    state: State
    occurred_at: datetime
    received_at: datetime
    position: int
    index: int
    summary: str = ""
    action: str | None = None


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed since the last ``take_changes``.

    - ``incidents``: full values of incidents created or changed (not merged away):
      every incident that received a fact or a manual event, or whose timeline window
      took a deploy (each of these changes its value).
    - ``merged``: incidents merged away (or changed since), with ``merged_into`` set.
    - ``risks``: the current risks of every changed service (an empty tuple clears them).
    - ``subjects``: subject states that changed, by (service, source, subject).
    - ``joins``: per signal (position, index in its delivery), the incident it joined
      (failures, failing periods, acknowledgements) or recovered (recoveries), else None.
    - ``services``: services whose state changed: the ones to ``dump`` for a checkpoint.
    """

    incidents: tuple[Incident, ...] = ()
    merged: tuple[Incident, ...] = ()
    risks: Mapping[str, tuple[Risk, ...]] = field(default_factory=dict)
    subjects: tuple[SubjectState, ...] = ()
    joins: Mapping[FactId, str | None] = field(default_factory=dict)
    services: tuple[str, ...] = ()


def incident_id_for(service: str, signal: Signal, attempt: int = 0) -> str:
    """``inc_`` + 16 hex digits of sha256 over (service, subject, occurred_at): stable
    across rebuilds. ``attempt`` > 0 only when that id is already held (the same
    failure reported again after its incident was closed long ago)."""
    text = "\x1f".join((service, signal.subject, format_time(signal.occurred_at)))
    if attempt:
        text += f"\x1f{attempt}"
    return "inc_" + hashlib.sha256(text.encode()).hexdigest()[:16]


class Engine:
    """Folds the log into incidents. Not thread-safe: one projector drives it.

    ``load`` every dumped service before feeding further events: an incident merged
    across services is reached from both.
    """

    def __init__(self, config: EngineConfig) -> None:
        self._config = config
        self._map = ServiceMap(config.services)
        self._services: dict[str, ServiceState] = {}
        self._incidents: dict[str, IncidentState] = {}
        self._by_service: dict[str, set[str]] = {}  # service -> held incidents covering it
        # Caches, dropped on every mutation: a pure function of the state above.
        self._views: dict[str, Incident] = {}
        self._spans: dict[str, _Span] = {}
        # Change tracking (not state: never dumped, never affects the fold).
        self._dirty: set[str] = set()  # incidents touched since the last take_changes
        self._changed_services: set[str] = set()
        self._changed_subjects: dict[tuple[str, str, str], SubjectState] = {}
        self._joins: dict[FactId, str | None] = {}

    # --- Public interface -----------------------------------------------------------

    def service_of(self, signal: Signal) -> str:
        return self._map.service_of(signal)

    def apply_delivery(
        self, position: int, received_at: datetime, signals: Sequence[Signal]
    ) -> None:
        touched: set[str] = set()
        for index, signal in enumerate(signals):
            fact = Fact(position, index, received_at, signal)
            svc = self._service(self.service_of(signal))
            svc.see(received_at)
            touched.add(svc.name)
            self._changed_services.add(svc.name)
            self._joins[fact.id] = self._apply_fact(svc, fact)
        for name in sorted(touched):
            self._prune(self._services[name])

    def apply_manual(
        self,
        position: int,
        recorded_at: datetime,
        event: ManualEvent,
        *,
        incident_id: str | None = None,
    ) -> None:
        """Apply a manual event posted to ``incident-<incident_id>``.

        ``incident_id`` is required except for a declaration (whose id it carries).
        Events for an incident that is not held (never declared, or long closed and
        dropped by retention) change nothing. Events posted to an incident merged away
        apply to the one it was merged into.
        """
        if isinstance(event, IncidentDeclared):
            if incident_id is not None and incident_id != event.incident_id:
                raise ValueError("a declaration is posted to its own incident id")
            incident_id = event.incident_id
            if incident_id not in self._incidents:
                self._create(event.service, incident_id, event.title, position)
        if incident_id is None:
            raise ValueError("incident_id is required for this manual event")
        addressed = self._incidents.get(incident_id)
        if addressed is None:
            return
        record = ManualRecord(position, recorded_at, incident_id, event)
        self._touch(addressed.id)
        addressed.version += 1
        root = self._root(addressed.id)
        if root is None:  # merged into an incident retention has dropped
            return
        self._touch(root.id)
        if isinstance(event, IncidentMerged):
            root = self._merge(root, event.other_id, record) or root
        else:
            root.add_manual(record)
        home = self._services[root.home]
        home.see(recorded_at)
        self._prune(home)

    def take_changes(self) -> Changes:
        changed: list[Incident] = []
        merged: list[Incident] = []
        for inc_id in sorted(self._dirty):
            if inc_id not in self._incidents:  # dropped by retention meanwhile
                continue
            now = self._view(inc_id)
            (merged if now.merged_into is not None else changed).append(now)
        services = tuple(sorted(self._changed_services))
        changes = Changes(
            incidents=tuple(changed),
            merged=tuple(merged),
            risks={name: self.risks(name) for name in services if name in self._services},
            subjects=tuple(self._changed_subjects[k] for k in sorted(self._changed_subjects)),
            joins=dict(sorted(self._joins.items())),
            services=services,
        )
        self._dirty.clear()
        self._changed_services.clear()
        self._changed_subjects.clear()
        self._joins.clear()
        return changes

    def incidents(self) -> list[Incident]:
        views = [self._view(inc_id) for inc_id in sorted(self._incidents)]
        return sorted(views, key=lambda i: (i.started_at, i.id))

    def incident(self, incident_id: str) -> Incident | None:
        return self._view(incident_id) if incident_id in self._incidents else None

    def services(self) -> list[str]:
        return sorted(self._services)

    def risks(self, service: str) -> tuple[Risk, ...]:
        """Standing risks: subjects whose latest state is a warning (a certificate
        expiring soon), and deploy subjects whose latest outcome is a failure."""
        svc = self._services.get(service)
        if svc is None:
            return ()
        risks: list[Risk] = []
        for fact in svc.subjects.values():
            s = fact.signal
            if s.kind != "deploy" and s.state == "warning":
                reason = s.summary or texts.state_text(s, "warning")
                risks.append(Risk(service, s.subject, s.kind, reason, s.occurred_at,
                                  fact.position))
        for fact in svc.outcomes.values():
            s = fact.signal
            if s.action in DEPLOY_FAILURES:
                risks.append(Risk(service, s.subject, s.kind, texts.deploy_text(s),
                                  s.occurred_at, fact.position))
        return tuple(sorted(risks, key=lambda r: (r.subject, r.kind, r.since, r.position)))

    def subject_states(self, service: str) -> list[SubjectState]:
        svc = self._services.get(service)
        if svc is None:
            return []
        return [_subject_state(service, svc.subjects[k]) for k in sorted(svc.subjects)]

    def dump(self, service: str) -> dict[str, Any]:
        svc = self._services[service]
        return service_to_json(svc, [self._incidents[i] for i in svc.incidents])

    def load(self, service: str, state: dict[str, Any]) -> None:
        """Restore one service's dump (replacing what this engine held for it)."""
        if service in self._services:
            for inc_id in list(self._services[service].incidents):
                self._forget(inc_id)
        svc, incidents = service_from_json(service, state)
        self._services[service] = svc
        for inc in incidents:
            self._register(inc)
        self._views.clear()  # renders read deploys across services: recompute lazily
        self._spans.clear()

    # --- Signals ----------------------------------------------------------------------

    def _apply_fact(self, svc: ServiceState, fact: Fact) -> str | None:
        if fact.signal.kind == "deploy":
            self._apply_deploy(svc, fact)
            return None
        if fact.is_ack:
            return self._apply_ack(svc, fact)
        self._set_subject(svc, fact)
        if fact.is_failing:
            return self._apply_failing(svc, fact)
        return self._apply_recovery(svc, fact)

    def _set_subject(self, svc: ServiceState, fact: Fact) -> None:
        """Rule 3: a subject's state is its latest signal by time, then log order."""
        current = svc.subjects.get(fact.subject_key)
        if current is not None and current.key > fact.key:
            return
        svc.subjects[fact.subject_key] = fact
        state = _subject_state(svc.name, fact)
        self._changed_subjects[(svc.name, state.source, state.subject)] = state

    def _apply_failing(self, svc: ServiceState, fact: Fact) -> str:
        """Rules 1, 2, 4 and 5: join the incident this failure belongs to, or open one.

        Its recovery, when one already arrived (kept in the history), joins with it.
        """
        history = svc.history.get(fact.subject_key, [])
        recovery = None
        if not fact.is_period:
            recovery = next((h for h in history if h.key > fact.key), None)
            end = None if recovery is None else recovery.signal.occurred_at
        else:
            end = fact.signal.occurred_at
        target = self._place(svc.name, fact.failing_since, end)
        if target is None:
            target = self._create(svc.name, self._new_id(svc.name, fact.signal),
                                  texts.title_for(svc.name, fact.signal), fact.position)
        self._touch(target.id)
        target.facts[fact.id] = fact
        if recovery is not None:
            target.facts.setdefault(recovery.id, recovery)
        return target.id

    def _place(self, service: str, start: datetime, end: datetime | None
               ) -> IncidentState | None:
        """Which incident a failure of ``service`` from ``start`` (to ``end`` when its
        recovery is known) joins; None to open a new one.

        1. An incident whose span [started_at, resolved_at] (open: no end) contains
           ``start`` (the latest-started if several).
        2. Else one resolved less than ``reopen_window`` before ``start``: it reopens.
        3. Else the next incident to start after ``start``, unless the failure is known
           to have ended more than ``reopen_window`` before it began: a late signal with
           an earlier time moves ``started_at`` (a missed cron run hours before the
           outage others saw), but a failure over and done before it is its own incident.
        4. Else None.
        """
        window = self._config.reopen_window
        live = self._live_spans(service)
        containing = [v for v in live if v.started_at <= start
                      and (v.resolved_at is None or start <= v.resolved_at)]
        if containing:
            return self._incidents[max(containing, key=lambda v: (v.started_at, v.id)).id]
        reopening = [v for v in live if v.resolved_at is not None
                     and v.resolved_at < start <= v.resolved_at + window]
        if reopening:
            return self._incidents[max(reopening, key=lambda v: (v.resolved_at, v.id)).id]
        later = [v for v in live if v.started_at > start]
        if later:
            nearest = min(later, key=lambda v: (v.started_at, v.id))
            if end is None or end >= nearest.started_at - window:
                return self._incidents[nearest.id]
        return None

    def _apply_recovery(self, svc: ServiceState, fact: Fact) -> str | None:
        """Rule 3/4: a recovery joins each incident in which it ends a failing run of its
        subject; it is kept in the history either way (a late failure may need it)."""
        insort(svc.history.setdefault(fact.subject_key, []), fact, key=lambda f: f.key)
        joined: tuple[SortKey, str] | None = None
        for inc_id in sorted(self._by_service.get(svc.name, ())):
            inc = self._incidents[inc_id]
            if inc.merged_into is not None:
                continue
            last_failure = _ends_run_after(inc, fact)
            if last_failure is None:
                continue
            self._touch(inc_id)
            inc.facts[fact.id] = fact
            if joined is None or last_failure > joined[0]:
                joined = (last_failure, inc_id)
        return None if joined is None else joined[1]

    def _apply_ack(self, svc: ServiceState, fact: Fact) -> str | None:
        """An on-call tool's acknowledgement: to the incident open at its time, else to
        the latest-started open incident of the service; dropped if there is none."""
        at = fact.signal.occurred_at
        live = self._live_spans(svc.name)
        containing = [v for v in live if v.started_at <= at
                      and (v.resolved_at is None or at <= v.resolved_at)]
        candidates = containing or [v for v in live if v.resolved_at is None]
        if not candidates:
            return None
        target = max(candidates, key=lambda v: (v.started_at, v.id)).id
        self._touch(target)
        self._incidents[target].facts[fact.id] = fact
        return target

    def _apply_deploy(self, svc: ServiceState, fact: Fact) -> None:
        """Rule 7: a change, never a failure. It shows on every incident of its service
        whose window [started_at − lookback, resolved_at] holds it; a failed deploy or
        pipeline stays a risk until a later deploy of the same subject succeeds."""
        at = fact.signal.occurred_at
        for inc_id in sorted(self._by_service.get(svc.name, ())):
            v = self._span(inc_id)
            if v.started_at - self._config.deploy_lookback <= at and (
                v.resolved_at is None or at <= v.resolved_at
            ):
                self._touch(inc_id)
        # Every render of this service's incidents reads the deploy list.
        for inc_id in self._by_service.get(svc.name, ()):
            self._views.pop(inc_id, None)
        insort(svc.deploys, fact, key=lambda f: f.key)
        if fact.signal.action in DEPLOY_OUTCOMES:
            current = svc.outcomes.get(fact.subject_key)
            if current is None or fact.key > current.key:
                svc.outcomes[fact.subject_key] = fact
        self._set_subject(svc, fact)

    # --- Manual events ------------------------------------------------------------------

    def _merge(self, root: IncidentState, other_id: str, record: ManualRecord
               ) -> IncidentState | None:
        """Rule 10: merge two incidents; the older survives, whichever was named.

        1. Follow both ids to the incidents they now live in; same one: nothing to do.
        2. The older is the earlier ``started_at``, then the earlier opened, then the id.
        3. The survivor takes the other's facts, manual events and services; the other
           is frozen with ``merged_into``; ids that pointed at it point at the survivor.
        """
        other = self._root(other_id) if other_id in self._incidents else None
        if other is None or other.id == root.id:
            root.add_manual(record)  # kept: the timeline says a merge was asked
            return None
        a, b = self._span(root.id), self._span(other.id)
        older_first = sorted([(a.started_at, root.opened_position, root.id),
                              (b.started_at, other.opened_position, other.id)])
        survivor = self._incidents[older_first[0][2]]
        absorbed = self._incidents[older_first[1][2]]
        for inc_id in sorted(self._incidents):
            if self._incidents[inc_id].merged_into == absorbed.id:
                self._touch(inc_id)
                self._incidents[inc_id].merged_into = survivor.id
        self._touch(survivor.id)
        self._touch(absorbed.id)
        for fact_id, fact in absorbed.facts.items():
            survivor.facts.setdefault(fact_id, fact)
        for earlier in absorbed.manual:
            survivor.add_manual(earlier)
        survivor.add_manual(record)
        for service in absorbed.services - survivor.services:
            survivor.services.add(service)
            self._by_service.setdefault(service, set()).add(survivor.id)
        absorbed.merged_into = survivor.id
        absorbed.merged_at = record.recorded_at
        return survivor

    # --- Bookkeeping --------------------------------------------------------------------

    def _service(self, name: str) -> ServiceState:
        svc = self._services.get(name)
        if svc is None:
            svc = self._services[name] = ServiceState(name=name)
        return svc

    def _new_id(self, service: str, signal: Signal) -> str:
        attempt = 0
        while (candidate := incident_id_for(service, signal, attempt)) in self._incidents:
            attempt += 1
        return candidate

    def _create(self, service: str, inc_id: str, title: str, position: int) -> IncidentState:
        inc = IncidentState(id=inc_id, home=service, title=title, opened_position=position,
                            services={service})
        self._service(service).incidents.add(inc_id)
        self._register(inc)
        self._dirty.add(inc_id)
        self._changed_services.add(service)
        return inc

    def _register(self, inc: IncidentState) -> None:
        self._incidents[inc.id] = inc
        for service in inc.services:
            self._by_service.setdefault(service, set()).add(inc.id)

    def _forget(self, inc_id: str) -> None:
        inc = self._incidents.pop(inc_id)
        for service in inc.services:
            self._by_service.get(service, set()).discard(inc_id)
        self._services[inc.home].incidents.discard(inc_id)
        self._views.pop(inc_id, None)
        self._spans.pop(inc_id, None)
        self._dirty.discard(inc_id)

    def _root(self, inc_id: str) -> IncidentState | None:
        inc = self._incidents.get(inc_id)
        while inc is not None and inc.merged_into is not None:
            inc = self._incidents.get(inc.merged_into)
        return inc

    def _touch(self, inc_id: str) -> None:
        """Call when changing anything an incident renders from: every touch adds a fact
        or a manual event, so the incident is reported by the next ``take_changes``."""
        self._dirty.add(inc_id)
        self._views.pop(inc_id, None)
        self._spans.pop(inc_id, None)
        self._changed_services.add(self._incidents[inc_id].home)

    def _span(self, inc_id: str) -> _Span:
        span = self._spans.get(inc_id)
        if span is None:
            started_at, resolved_at = incident_span(self._incidents[inc_id])
            span = self._spans[inc_id] = _Span(inc_id, started_at, resolved_at)
        return span

    def _live_spans(self, service: str) -> list[_Span]:
        """Spans of the incidents a signal of ``service`` may join (not merged away)."""
        return [self._span(i) for i in sorted(self._by_service.get(service, ()))
                if self._incidents[i].merged_into is None]

    def _view(self, inc_id: str) -> Incident:
        view = self._views.get(inc_id)
        if view is None:
            inc = self._incidents[inc_id]
            deploys = [d for service in sorted(inc.services)
                       if service in self._services
                       for d in self._services[service].deploys]
            view = self._views[inc_id] = render_incident(
                inc, deploys,
                default_severity=self._config.default_severity,
                deploy_lookback=self._config.deploy_lookback,
            )
        return view

    def _prune(self, svc: ServiceState) -> None:
        """Retention, in data time (the service's latest receipt), so that a straight fold
        and a restored one forget the same things at the same events.

        1. Drop resolved incidents of the service resolved before the cutoff, and those
           merged away before it.
        2. Drop history and deploys older than any held incident covering the service
           could show (its start minus the deploy lookback), and older than the cutoff.
        """
        if svc.watermark is None:
            return
        cutoff = svc.watermark - self._config.retention
        for inc_id in sorted(svc.incidents):
            inc = self._incidents[inc_id]
            if inc.merged_into is not None:
                drop = inc.merged_at is not None and inc.merged_at < cutoff
            else:
                span = self._span(inc_id)
                drop = span.resolved_at is not None and span.resolved_at < cutoff
            if drop:
                self._changed_services.add(svc.name)
                self._forget(inc_id)
        starts = [self._span(i).started_at for i in sorted(self._by_service.get(svc.name, ()))]
        horizon = min([cutoff, *starts]) - self._config.deploy_lookback
        if svc.deploys and svc.deploys[0].signal.occurred_at < horizon:
            svc.deploys = [d for d in svc.deploys if d.signal.occurred_at >= horizon]
            for inc_id in self._by_service.get(svc.name, ()):
                self._views.pop(inc_id, None)
        for key in sorted(svc.history):
            if svc.history[key][0].signal.occurred_at >= horizon:  # sorted: nothing older
                continue
            kept = [h for h in svc.history[key] if h.signal.occurred_at >= horizon]
            if kept:
                svc.history[key] = kept
            else:
                del svc.history[key]


class _Span(NamedTuple):
    """What placing a signal needs of an incident: its id and where it lies in time."""

    id: str
    started_at: datetime
    resolved_at: datetime | None


def _ends_run_after(inc: IncidentState, fact: Fact) -> SortKey | None:
    """The key of the subject's last plain failure in ``inc`` when ``fact`` is the first
    recovery after it (nothing in the incident already ended that run), else None."""
    subject = fact.subject_key
    last_failure: SortKey | None = None
    for member in inc.facts.values():
        if member.subject_key == subject and member.signal.state == "failing" and (
            not member.is_ack
        ) and member.key < fact.key and (last_failure is None or member.key > last_failure):
            last_failure = member.key
    if last_failure is None:
        return None
    for member in inc.facts.values():
        if member.subject_key == subject and not member.is_ack and (
            member.signal.state != "failing"
        ) and last_failure < member.key < fact.key:
            return None
    return last_failure


def _subject_state(service: str, fact: Fact) -> SubjectState:
    s = fact.signal
    return SubjectState(
        service=service,
        source=s.source,
        subject=s.subject,
        kind=s.kind,
        state=s.state,
        occurred_at=s.occurred_at,
        received_at=fact.received_at,
        position=fact.position,
        index=fact.index,
        summary=s.summary,
        action=s.action,
    )


def replay(config: EngineConfig, events: Iterable[tuple[Any, ...]]) -> Engine:
    """Fold a whole log: ``("delivery", position, received_at, signals)`` and
    ``("manual", position, recorded_at, event, incident_id)`` tuples, in log order."""
    engine = Engine(config)
    for event in events:
        if event[0] == "delivery":
            engine.apply_delivery(event[1], event[2], event[3])
        else:
            engine.apply_manual(event[1], event[2], event[3], incident_id=event[4])
    return engine
