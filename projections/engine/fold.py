"""The incident engine: a deterministic fold of signals and manual events (TIMELINE.md).

No I/O, no clock, no database. The projector feeds it the log in order
(``apply_delivery`` for each delivery's signals, ``apply_manual`` for each manual event),
takes what changed (``take_changes``) into the read models, and checkpoints it per
service (``dump``/``load``). The same log always gives the same incidents, ids and
timelines, byte for byte.

What the engine decides is *membership*: which incident a signal joins (rules 1, 2 and
5), and the manual events each incident received. For signals alone it does not depend
on arrival order: incidents made of signals are the clusters of their subjects' failing
runs less than ``reopen_window`` apart, kept so as facts arrive (``_place`` merges the
incidents a failure bridges, ``_split`` re-places a failure once its recovery shows it
was over long before the rest). Incidents an engineer spoke about are never merged or
split behind their back. Everything read off the members (moments, status, timeline)
is rendered in time order by ``projections.engine.timeline.render_incident``, once per
``take_changes`` for each changed incident, so late signals land where they belong.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sortedcontainers import SortedList

from ingest.manual import IncidentDeclared, IncidentMerged, ManualEvent
from ingest.signals import Kind, Severity, Signal, State, format_time
from projections.engine import texts
from projections.engine.facts import (
    DEPLOY_OUTCOMES,
    Fact,
    FactId,
    SubjectKey,
    fact_from_json,
    fact_to_json,
    signal_from_json,
    signal_to_json,
)
from projections.engine.model import Incident, Risk
from projections.engine.services import ServiceMap
from projections.engine.state import (
    FAILURE,
    RECOVERY,
    ColdFacts,
    ColdIncident,
    IncidentState,
    Line,
    ManualRecord,
    Moment,
    Report,
    ServiceState,
    What,
    incident_state_from_json,
    incident_state_to_json,
    moment_key,
    pack,
    service_from_json,
    service_to_json,
    unpack,
)
from projections.engine.timeline import incident_span, render_incident

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
    """- ``services``: service -> case-insensitive globs on subjects, and on how an alert
      is shown (``ServiceMap`` says which wins when several match: an exact name, then
      sorted service names; the subject before the shown names).
    - ``default_severity``: per source, when a signal carries none; else P3.
    - ``reopen_window``: a failure this soon after a resolution reopens it (flapping).
    - ``deploy_lookback``: deploys this long before ``started_at`` are on the timeline.
    - ``retention``: resolved incidents whose ``resolved_at`` is older than this, measured
      from the latest receipt time of the service's signals (data time, never a clock),
      leave memory for the service's compact archive, and so do old recoveries and
      deploys. Manual events never move it: an engineer writes today about incidents of
      any age (history imported from last year), and that must not age the service.
      It never changes an answer (TIMELINE.md rule 11): a fact or manual event that
      touches an archived incident brings it back first (``Engine._thaw``), and an
      archived id is never reused.
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
      took a deploy (each of these changes its value). One that retention dropped since
      is here too, with the value it had when it left memory: its last change was never
      written otherwise.
    - ``merged``: incidents merged away (or changed since), with ``merged_into`` set.
    - ``risks``: the current risks of every changed service (an empty tuple clears them).
    - ``subjects``: subject states that changed, by (service, source, subject).
    - ``joins``: per signal (position, index in its delivery), the incident it belongs
      to now (failures, failing periods, acknowledgements) or recovered (recoveries),
      else None: set when it is applied, and again whenever a merge, a split or a late
      fact moves it (the ``signal_incidents`` rows follow, live as in a rebuild).
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


_ZERO = timedelta(0)


class _Index:
    """The live incidents covering one service, by ``started_at``: which incidents a
    signal at a given time may touch, in O(log n + k) rather than a scan of all (a
    ``SortedList``: adding, moving and dropping an incident are O(log n) too).

    Resolved incidents are found between ``start ≥ from − longest`` and ``start ≤ to``
    (``longest`` bounds every indexed resolved incident's length; it only grows, which
    costs a few extra candidates, never a missed one); open incidents are kept apart.
    """

    __slots__ = ("longest", "open", "placed", "starts")

    def __init__(self) -> None:
        self.starts = SortedList()  # (started_at, incident id)
        self.placed: dict[str, tuple[datetime, datetime | None]] = {}
        self.open: set[str] = set()
        self.longest = timedelta(0)

    def put(self, inc_id: str, span: tuple[datetime, datetime | None]) -> None:
        before = self.placed.get(inc_id)
        if before == span:
            return
        if before is None or before[0] != span[0]:
            if before is not None:
                self.starts.remove((before[0], inc_id))
            self.starts.add((span[0], inc_id))
        self.placed[inc_id] = span
        if span[1] is None:
            self.open.add(inc_id)
        else:
            self.open.discard(inc_id)
            self.longest = max(self.longest, span[1] - span[0])

    def drop(self, inc_id: str) -> None:
        before = self.placed.pop(inc_id, None)
        if before is not None:
            self.starts.remove((before[0], inc_id))
            self.open.discard(inc_id)

    def touching(self, start: datetime, end: datetime | None, before: timedelta,
                 after: timedelta) -> list[str]:
        """Ids (sorted) of incidents with ``started_at − before ≤ end`` and
        ``start ≤ resolved_at + after`` (an open end is infinite on either side)."""
        found = [i for i in self.open if end is None or self.placed[i][0] - before <= end]
        upper = None if end is None else (end + before, _MAX_ID)
        for _, inc_id in self.starts.irange((start - after - self.longest,), upper):
            resolved = self.placed[inc_id][1]
            if resolved is not None and start <= resolved + after:
                found.append(inc_id)
        return sorted(found)


_MAX_ID = "\U0010ffff"
_PRUNE_EVERY = 3600  # seconds of data time between full retention passes of a service


class Engine:
    """Folds the log into incidents. Not thread-safe: one projector drives it.

    ``load`` every dumped service before feeding further events: an incident merged
    across services is reached from both.

    Cost: finding the incidents a signal touches is O(log n + k) in the incidents of its
    service (``_Index``); a repeat folds into an equal report in O(1); a new report is
    placed by bisection in its subject's line, a list insert (a memmove, cheap because
    repeats never lengthen a line). An incident is rendered once per ``take_changes``
    that reports it, never per signal.
    """

    def __init__(self, config: EngineConfig) -> None:
        self._config = config
        self._map = ServiceMap(config.services)
        self._services: dict[str, ServiceState] = {}
        self._incidents: dict[str, IncidentState] = {}
        self._by_service: dict[str, set[str]] = {}  # service -> held incidents covering it
        # Derived from the state above (rebuilt on load, never dumped):
        self._index: dict[str, _Index] = {}  # service -> live incidents covering it
        self._lines_of: dict[SubjectKey, set[str]] = {}  # subject -> live incidents with it
        self._frozen: dict[str, set[str]] = {}  # service -> incidents merged away (held)
        self._pruned: dict[str, int] = {}  # service -> data hour of its last full prune
        self._views: dict[str, Incident] = {}  # renders, dropped on every touch
        # Renders keep per-line caches (``render_incident(cache=...)``) unless renders
        # are dropped (a rebuild: ``drop_renders``).
        self._render_cache = True
        # The archive, found again (derived from each service's ``cold``):
        self._cold_home: dict[str, str] = {}  # archived incident -> its home service
        self._cold_live: dict[str, _Index] = {}  # service -> archived incidents, by span
        self._cold_frozen: dict[str, _Index] = {}  # service -> archived merged-away ones
        self._cold_into: dict[str, set[str]] = {}  # id -> archived ones merged into it
        # Change tracking (not state: never dumped, never affects the fold).
        self._dirty: set[str] = set()  # incidents touched since the last take_changes
        self._gone: dict[str, Incident] = {}  # dirty ones retention dropped: final values
        self._recent: set[str] = set()  # incidents touched by the event being applied
        self._changed_services: set[str] = set()
        self._changed_subjects: dict[tuple[str, str, str], Fact] = {}
        self._joins: dict[FactId, str | None] = {}

    # --- Public interface -----------------------------------------------------------

    def service_of(self, signal: Signal) -> str:
        """TIMELINE.md "service": ``[services]`` on the subject, then on an alert's shown
        names; else the payload's hint; else the subject as shown (``ServiceMap``)."""
        return self._map.service_of(signal)

    def apply_delivery(
        self, position: int, received_at: datetime, signals: Sequence[Signal],
        keep: Callable[[str], bool] | None = None,
    ) -> None:
        """``keep``: fold only the signals of the services it accepts (a shard of a
        rebuild, ``projections.runtime.shards``); each keeps its index in the delivery."""
        touched: set[str] = set()
        self._recent.clear()
        for index, signal in enumerate(signals):
            service = self.service_of(signal)
            if keep is not None and not keep(service):
                continue
            fact = Fact(position, index, received_at, signal)
            svc = self._service(service)
            svc.see(received_at)
            touched.add(svc.name)
            self._changed_services.add(svc.name)
            self._joins.pop(fact.id, None)
            joined = self._apply_fact(svc, fact)
            # A split it caused may have moved it already: that move is the latest word.
            self._joins.setdefault(fact.id, joined)
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
        Events for an incident never opened nor declared change nothing; one that
        retention archived is brought back first. Events posted to an incident merged
        away apply to the one it was merged into. The event's ``recorded_at`` is today, whatever
        the incident's age: it never moves the service's data time (retention).
        """
        self._recent.clear()
        if isinstance(event, IncidentDeclared):
            if incident_id is not None and incident_id != event.incident_id:
                raise ValueError("a declaration is posted to its own incident id")
            incident_id = event.incident_id
            if self._held(incident_id) is None:
                self._create(event.service, incident_id, event.title, position)
        if incident_id is None:
            raise ValueError("incident_id is required for this manual event")
        addressed = self._held(incident_id)
        if addressed is None:
            return
        record = ManualRecord(position, recorded_at, incident_id, event)
        self._touch(addressed.id)
        addressed.version += 1
        root = self._root(addressed.id)
        if root is None:  # unreachable: what an incident was merged into is held or archived
            return
        self._touch(root.id)
        if isinstance(event, IncidentMerged):
            root = self._merge(root, event.other_id, record) or root
        else:
            root.add_manual(record)
            self._reindex(root)
        # No ``see(recorded_at)``: a note written today on an incident imported from
        # last year would age the whole service by a year and drop that very incident.
        # Pruned all the same: a resolution dated long ago may take it past retention
        # (``take_changes`` still reports its final value).
        self._prune(self._services[root.home])

    def take_changes(self, *, held: bool = True, limit: int | None = None) -> Changes:
        """``held=False`` (a full rebuild, which writes each incident once): report only
        the incidents retention dropped (their final values, already rendered) and keep
        the held ones dirty, unrendered, for a later call. ``limit``: report at most that
        many incidents (the first by id); the rest stay for the next call."""
        changed: list[Incident] = []
        merged: list[Incident] = []
        gone = self._gone
        if held:
            ids = sorted(self._dirty | gone.keys())
        else:  # a dirty one's current value wins over the dropped one
            ids = sorted(gone.keys() - self._dirty)
            self._gone = {}
        if limit is not None:
            ids = ids[:limit]
        for inc_id in ids:
            # Dirty means held (``_forget`` clears it); an id dropped and then opened
            # again is dirty, and its current value wins over the dropped one.
            if inc_id in self._dirty:
                now = self._view(inc_id)
                if limit is not None:
                    self._dirty.discard(inc_id)
            else:
                now = gone[inc_id]
            if limit is not None:
                gone.pop(inc_id, None)
            (merged if now.merged_into is not None else changed).append(now)
        services = tuple(sorted(self._changed_services))
        changes = Changes(
            incidents=tuple(changed),
            merged=tuple(merged),
            risks={name: self.risks(name) for name in services if name in self._services},
            subjects=tuple(_subject_state(k[0], self._changed_subjects[k])
                           for k in sorted(self._changed_subjects)),
            joins=dict(sorted(self._joins.items())),
            services=services,
        )
        if limit is None and held:
            self._dirty.clear()
            gone.clear()
        self._changed_services.clear()
        self._changed_subjects.clear()
        self._joins.clear()
        return changes

    @property
    def pending_incidents(self) -> int:
        """Incidents changed and not yet reported by ``take_changes``."""
        return len(self._dirty | self._gone.keys())

    def drop_renders(self) -> None:
        """Forget the cached renders (recomputed on demand: they are a pure function of
        the state). A rebuild calls it after each ``take_changes``: it never reads an
        unchanged incident again, and keeping every incident's render would hold the
        whole read model in memory. Nor does it keep the renders' per-line caches
        from then on (``render_incident(cache=False)``): each incident is rendered
        about once, and the caches would weigh on every held incident."""
        self._views.clear()
        if self._render_cache:
            self._render_cache = False
            for inc in self._incidents.values():
                inc.drop_caches()

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
        for key in svc.risky:
            fact = svc.subjects[key]
            s = fact.signal
            reason = s.summary or texts.state_text(s, "warning")
            risks.append(Risk(service, s.subject, s.kind, reason, s.occurred_at,
                              fact.position))
        for key in svc.risky_outcomes:
            fact = svc.outcomes[key]
            s = fact.signal
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
            for entry in self._services[service].cold.values():
                self._cold_unregister(entry)
        svc, incidents = service_from_json(service, state)
        self._services[service] = svc
        self._pruned[service] = _hour(svc.watermark)  # every apply ends pruned to its hour
        for inc in incidents:
            self._register(inc)
        for inc_id in sorted(svc.cold):
            self._cold_register(svc.cold[inc_id], service)
        self._views.clear()  # renders read deploys across services: recompute lazily

    def check_aggregates(self) -> None:
        """For tests: every incremental aggregate equals a recomputation from scratch."""
        for inc_id in sorted(self._incidents):
            inc = self._incidents[inc_id]
            assert inc.span() == incident_span(inc), inc_id
            if inc.merged_into is None:
                for service in inc.services:
                    assert self._index[service].placed[inc_id] == inc.span(), inc_id
                for subject in inc.lines:
                    assert inc_id in self._lines_of[subject], inc_id
            if inc.merged_into is None:  # an incident's acknowledgements are in its span
                started, resolved = inc.span()
                assert all(started <= f.signal.occurred_at and (
                    resolved is None or f.signal.occurred_at <= resolved)
                    for f in inc.acks.values()), inc_id
        assert not self._cold_home.keys() & self._incidents.keys()  # held or archived
        for name in sorted(self._services):  # a stray is inside no live span of its service
            index = self._index.get(name)
            for fact in self._services[name].strays:
                at = fact.signal.occurred_at
                assert index is None or not index.touching(
                    at, at, timedelta(0), timedelta(0)), (name, fact.id)

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
        if fact.signal.state != "ok":
            # Rule 3: only ``ok`` recovers. A warning (a certificate expiring soon) or an
            # info signal is the subject's latest state (a risk), and leaves a failing
            # subject failing: it ends no run, joins no incident.
            return None
        return self._apply_recovery(svc, fact)

    def _set_subject(self, svc: ServiceState, fact: Fact) -> None:
        """Rule 3: a subject's state is its latest signal by time, then log order."""
        current = svc.subjects.get(fact.subject_key)
        if current is not None and current.key > fact.key:
            return
        svc.set_subject(fact)
        # Built when taken: a storm changes one subject's state thousands of times.
        self._changed_subjects[(svc.name, fact.signal.source, fact.signal.subject)] = fact

    def _apply_failing(self, svc: ServiceState, fact: Fact) -> str:
        """Rules 1, 2, 4 and 5: join the incident this failure belongs to, or open one.

        1. The same report already held (a repeat: same subject, kind, start and time)
           is folded into it, wherever it is: O(1), however big the incident.
        2. Else find where the failure ends: a period carries its end; a plain failure
           ends at the first recovery of its subject already known after it (kept in
           the history), else it is still failing.
        3. Place it (``_place``), or open an incident named after it; the recovery
           joins with it.
        """
        what: What = "period" if fact.is_period else "fail"
        subject = fact.subject_key
        s = fact.signal
        since = fact.failing_since
        key = (what, s.kind, since, s.occurred_at)
        # An equal report is in an incident whose span holds its start: if archived, back.
        self._thaw_touching(self._cold_live, svc.name, since, since, _ZERO, _ZERO)
        holding = self._lines_of.get(subject, ())
        for inc_id in (sorted(holding) if len(holding) > 1 else holding):
            inc = self._incidents[inc_id]
            if key in inc.lines[subject].reports and svc.name in inc.services:
                self._add(inc, fact, what)
                return inc.id
        self._thaw_facts(svc, fact.failing_since)  # the recovery that ends it, if old
        recoveries = self._recoveries_after(svc, fact)
        end: datetime | None = s.occurred_at if what == "period" else None
        if recoveries and what == "fail":
            end = recoveries[0].signal.occurred_at
        target = self._place(svc.name, fact.failing_since, end)
        if target is None:
            target = self._open(svc.name, fact)
        self._add(target, fact, what)
        if recoveries:
            r = recoveries[0].signal
            if ("recover", r.kind, r.occurred_at, r.occurred_at) not in (
                    target.lines[subject].reports):
                for recovery in recoveries:
                    self._add(target, recovery, "recover")
        return target.id

    @staticmethod
    def _recoveries_after(svc: ServiceState, fact: Fact) -> list[Fact]:
        """The recovery already known to end the run ``fact`` fails in (the first of its
        subject after the failure began; for a period, only one before the period's own
        end), with every equal report of it: they join together, as they would have had
        the failure arrived first."""
        history = svc.history.get(fact.subject_key, [])
        start = (fact.failing_since, fact.position, fact.index)
        after = bisect_right(history, start, key=lambda f: f.key)
        if after == len(history):
            return []
        first = history[after]
        if fact.is_period and first.key >= fact.key:
            return []
        found = []
        for h in history[after:]:
            if h.signal.occurred_at != first.signal.occurred_at:
                break
            if h.signal.kind == first.signal.kind:
                found.append(h)
        return found

    def _place(self, service: str, start: datetime, end: datetime | None
               ) -> IncidentState | None:
        """Which incident a failure of ``service`` from ``start`` (to ``end`` when its
        recovery is known) joins; None to open a new one.

        It *touches* an incident when the two are less than ``reopen_window`` apart:
        started no later than ``end + window`` and resolved (if at all) no earlier than
        ``start − window``. That is rules 1, 2 and 5 at once: inside an incident, a
        reopening within the window, a late failure (still failing, or ended within the
        window of it) before an incident that moves its ``started_at``.

        1. Among touched incidents an engineer spoke about (``pinned``), it joins the
           latest-started one containing ``start``, else the latest resolved one it
           reopens, else the next to start after it.
        2. Else, the touched incidents made of signals alone are one incident now:
           merged into the oldest (``_absorb``), so the answer is the same whatever
           order the signals arrived in.
        3. Else None.
        """
        window = self._config.reopen_window
        self._thaw_touching(self._cold_live, service, start, end, window, window)
        index = self._index.get(service)
        if index is None:
            return None
        touched = index.touching(start, end, window, window)
        if not touched:
            return None
        pinned = [i for i in touched if self._incidents[i].pinned]
        if pinned:
            spans = {i: index.placed[i] for i in pinned}
            containing = [i for i in pinned if spans[i][0] <= start and (
                spans[i][1] is None or start <= _end(spans[i]))]
            if containing:
                return self._incidents[max(containing, key=lambda i: (spans[i][0], i))]
            reopening = [i for i in pinned if spans[i][1] is not None
                         and _end(spans[i]) < start <= _end(spans[i]) + window]
            if reopening:
                return self._incidents[max(reopening, key=lambda i: (_end(spans[i]), i))]
            return self._incidents[min(pinned, key=lambda i: (spans[i][0], i))]
        return self._absorb_all([self._incidents[i] for i in touched])

    def _apply_recovery(self, svc: ServiceState, fact: Fact) -> str | None:
        """Rule 3/4: a recovery joins each incident in which it ends a failing run of its
        subject (or repeats a recovery already there); it is kept in the history either
        way (a late failure may need it)."""
        subject = fact.subject_key
        insort(svc.history.setdefault(subject, []), fact, key=lambda f: f.key)
        s = fact.signal
        # It can end a run only inside an incident's span: bring archived ones back.
        self._thaw_touching(self._cold_live, svc.name, s.occurred_at, s.occurred_at,
                            timedelta(0), timedelta(0))
        key = ("recover", s.kind, s.occurred_at, s.occurred_at)
        probe = (s.occurred_at, fact.position, fact.index, RECOVERY)
        joined: tuple[tuple[datetime, int, int, int], str] | None = None
        for inc_id in sorted(self._lines_of.get(subject, ())):
            inc = self._incidents.get(inc_id)
            if inc is None or inc.merged_into is not None or svc.name not in inc.services:
                continue
            line = inc.lines[subject]
            if key in line.reports:  # the same recovery again: folded into it
                ended = moment_key(line.reports[key].moments()[0])
            else:
                previous = line.before_key(probe)
                if previous is None or previous[3] != FAILURE:
                    continue
                ended = moment_key(previous)
            self._add(inc, fact, "recover")
            if joined is None or ended > joined[0]:
                joined = (ended, inc.id)
        return None if joined is None else joined[1]

    def _apply_ack(self, svc: ServiceState, fact: Fact) -> str | None:
        """An on-call tool's acknowledgement (TIMELINE.md rule 11).

        It belongs to the incident of its service whose span ``[started_at,
        resolved_at]`` (an open incident: to the end of time) contains its time; of
        several (incidents an engineer pinned may overlap), the latest-started, then the
        greatest id. Whenever it arrives: until such an incident exists (its failure is
        not received yet, or not known to last that long), it is kept with its service
        (``ServiceState.strays``) and joins the first incident whose span comes to
        contain it (``_adopt``, on every span change)."""
        at = fact.signal.occurred_at
        self._thaw_touching(self._cold_live, svc.name, at, at, timedelta(0), timedelta(0))
        index = self._index.get(svc.name)
        candidates = [] if index is None else index.touching(at, at, timedelta(0),
                                                             timedelta(0))
        if index is None or not candidates:
            insort(svc.strays, fact, key=lambda f: f.key)
            self._changed_services.add(svc.name)
            return None
        target = max(candidates, key=lambda i: (index.placed[i][0], i))
        inc = self._incidents[target]
        inc.acks[fact.id] = fact
        self._touch(target)
        return target

    def _apply_deploy(self, svc: ServiceState, fact: Fact) -> None:
        """Rule 7: a change, never a failure. It shows on every incident of its service
        whose window [started_at − lookback, resolved_at] holds it; a failed deploy or
        pipeline stays a risk until a later deploy of the same subject succeeds."""
        at = fact.signal.occurred_at
        lookback = self._config.deploy_lookback
        for cold in (self._cold_live, self._cold_frozen):  # their timelines show it too
            self._thaw_touching(cold, svc.name, at, at, lookback, timedelta(0))
        index = self._index.get(svc.name)
        if index is not None:
            for inc_id in index.touching(at, at, self._config.deploy_lookback, timedelta(0)):
                self._touch(inc_id)
        # An incident merged away still renders its window's deploys (few of them).
        for inc_id in sorted(self._frozen.get(svc.name, ())):
            started, resolved = self._incidents[inc_id].span()
            if started - self._config.deploy_lookback <= at and (
                    resolved is None or at <= resolved):
                self._touch(inc_id)
        insort(svc.deploys, fact, key=lambda f: f.key)
        if fact.signal.action in DEPLOY_OUTCOMES:
            current = svc.outcomes.get(fact.subject_key)
            if current is None or fact.key > current.key:
                svc.set_outcome(fact)
        self._set_subject(svc, fact)

    # --- Members ------------------------------------------------------------------------

    def _add(self, inc: IncidentState, fact: Fact, what: What) -> None:
        """Add one fact to ``inc``: folded into an equal report (O(1)), or a new report
        in its subject's line (O(log n)); then the aggregates, the index and, when a
        recovery ended a run of an incident made of signals alone, ``_split``."""
        subject = fact.subject_key
        s = fact.signal
        line = inc.lines.get(subject)
        if line is None:
            line = inc.lines[subject] = Line()
            self._lines_of.setdefault(subject, set()).add(inc.id)
        since = fact.failing_since if what != "recover" else s.occurred_at
        report = line.reports.get((what, s.kind, since, s.occurred_at))
        ended: datetime | None = None
        if report is not None:
            report.add(fact)
        else:
            report = Report.of(what, fact)
            moment = report.moments()[-1]
            if what == "recover":
                previous = line.before_key(moment_key(moment))
                if previous is None or previous[3] != FAILURE:
                    if not line.reports:
                        del inc.lines[subject]
                        self._lines_of[subject].discard(inc.id)
                    return  # it ends nothing here: it says what we already knew
            line.insert(report)
            if what != "fail" and line.ends_run(moment):
                ended = moment[0]
                quiet = _drop_quiet_after(line, moment)
                if quiet is not None:
                    self._follow(quiet, None)
            elif what == "fail":
                ended = _run_end_after(line, moment)  # a run already known to end
            inc.note_line(subject)
        if report.failing:
            inc.note_failure(report, fact.position)
        self._touch(inc.id)
        self._reindex(inc)
        last = inc.agg.last_since
        if ended is not None and not inc.pinned and last is not None and (
                last > ended + self._config.reopen_window):
            self._split(inc)

    def _merge_reports(self, inc: IncidentState, subject: SubjectKey,
                       reports: Iterable[Report]) -> None:
        """Another incident's reports of ``subject`` join ``inc`` (merges, splits); a
        recovery that no longer ends a run leaves, as if it had arrived last."""
        line = inc.lines.get(subject)
        if line is None:
            line = inc.lines[subject] = Line()
        self._lines_of.setdefault(subject, set()).add(inc.id)
        for report in reports:
            self._follow(report, inc.id)  # each signal's row follows its report
            existing = line.reports.get(report.key)
            if existing is None:
                line.insert(report)
            else:
                line.remove(existing)  # its first position, hence its moments, may move
                existing.absorb(report)
                line.insert(existing)
        previous: int | None = None
        for moment in list(line.moments):
            report = moment[4]
            if moment[3] == RECOVERY and report.what == "recover" and previous != FAILURE:
                line.remove(report)
                self._follow(report, None)
                continue
            previous = moment[3]

    def _follow(self, report: Report, inc_id: str | None) -> None:
        """The facts of ``report`` now belong to ``inc_id`` (None: to no incident): their
        ``signal_incidents`` rows follow (``Changes.joins``)."""
        for fact_id in report.fact_ids():
            self._joins[fact_id] = inc_id

    def _split(self, inc: IncidentState) -> None:
        """Re-place what no longer belongs: a failure that joined an incident while its
        end was unknown, once its recovery shows it was over long before (or after).

        1. Cut each subject's line into runs (a failure while not failing opens one, the
           next recovery ends it); a quiet recovery goes with the run before it.
        2. Cluster the runs in time order: a run more than ``reopen_window`` after every
           earlier run of the cluster has ended starts a new cluster.
        3. The cluster holding the failure the id was derived from (``origin``) keeps the
           incident, else the earliest; each other cluster leaves and is
           placed again (``_place``): joined to the incidents it touches, or opened
           under the id of its earliest failure. Acknowledgements no longer inside the
           incident's span are strays again (``_apply_ack``).
        """
        window = self._config.reopen_window
        runs: list[_FailingRun] = []
        for subject in sorted(inc.lines):
            runs += _runs(subject, inc.lines[subject])
        runs.sort(key=lambda r: (r.start, r.subject, r.reports[0].first))
        clusters: list[list[_FailingRun]] = []
        reach: datetime | None = None
        for run in runs:
            if clusters and (reach is None or run.start <= reach + window):
                clusters[-1].append(run)
                reach = None if reach is None or run.end is None else max(reach, run.end)
            else:
                clusters.append([run])
                reach = run.end
        if len(clusters) < 2:
            return
        keep = clusters[0]
        if inc.origin is not None:
            origin_subject, origin_at = inc.origin
            keep = next((c for c in clusters if any(
                run.subject == origin_subject and any(r.failing and r.at == origin_at
                                                     for r in run.reports)
                for run in c)), keep)
        leaving: list[tuple[datetime, datetime | None, list[_FailingRun]]] = []
        for cluster in clusters:
            if cluster is keep:
                continue
            start = cluster[0].start
            end = None if any(r.end is None for r in cluster) else max(
                r.end for r in cluster if r.end is not None)
            for run in cluster:
                line = inc.lines[run.subject]
                for report in run.reports:
                    line.remove(report)
                if not line.reports:
                    del inc.lines[run.subject]
                    self._lines_of[run.subject].discard(inc.id)
            leaving.append((start, end, cluster))
        inc.refresh()
        self._reindex(inc)
        self._touch(inc.id)
        for start, end, cluster in leaving:
            target = self._place(inc.home, start, end)
            if target is None:
                opener = min((r for run in cluster for r in run.reports if r.failing),
                             key=lambda r: (r.since, r.first))
                target = self._open(inc.home, opener.rep)
            for run in cluster:
                self._merge_reports(target, run.subject, run.reports)
            target.refresh()
            self._reindex(target)
            self._touch(target.id)

    def _absorb_all(self, incidents: list[IncidentState]) -> IncidentState:
        """Merge incidents made of signals alone into the oldest (the earliest
        ``started_at``, then the earliest opened, then the id)."""
        ordered = sorted(incidents, key=lambda i: (i.span()[0], i.opened_position, i.id))
        survivor = ordered[0]
        for absorbed in ordered[1:]:
            at = self._services[absorbed.home].watermark
            assert at is not None  # a signal of the service was seen: that is how it exists
            self._absorb(survivor, absorbed, at)
        return survivor

    def _absorb(self, survivor: IncidentState, absorbed: IncidentState, at: datetime) -> None:
        """``absorbed`` joins ``survivor``: its reports (copied: the absorbed incident is
        frozen as it was, with ``merged_into``), acknowledgements, manual events and
        services; ids that pointed at it point at the survivor."""
        for inc_id in sorted(self._cold_into.get(absorbed.id, ())):
            self._thaw(inc_id)  # it points at the absorbed incident: it must follow
        for inc_id in sorted(self._incidents):
            if self._incidents[inc_id].merged_into == absorbed.id:
                self._touch(inc_id)
                self._incidents[inc_id].merged_into = survivor.id
        for subject in sorted(absorbed.lines):
            self._merge_reports(survivor, subject, [
                r.copy() for r in absorbed.lines[subject].reports.values()])
            self._lines_of[subject].discard(absorbed.id)
        for fact_id, fact in absorbed.acks.items():
            survivor.acks.setdefault(fact_id, fact)
            self._joins[fact_id] = survivor.id
        for earlier in absorbed.manual:
            insort(survivor.manual, earlier, key=lambda r: r.position)
        for service in sorted(absorbed.services - survivor.services):
            survivor.services.add(service)
            self._by_service.setdefault(service, set()).add(survivor.id)
        for service in absorbed.services:
            self._index[service].drop(absorbed.id)
            self._frozen.setdefault(service, set()).add(absorbed.id)
        absorbed.merged_into = survivor.id
        absorbed.merged_at = at
        survivor.refresh()
        self._reindex(survivor)
        self._touch(survivor.id)
        self._touch(absorbed.id)

    # --- Manual events ------------------------------------------------------------------

    def _merge(self, root: IncidentState, other_id: str, record: ManualRecord
               ) -> IncidentState | None:
        """Rule 10: merge two incidents; the older survives, whichever was named.

        1. Follow both ids to the incidents they now live in; same one: nothing to do.
        2. The older is the earlier ``started_at``, then the earlier opened, then the id.
        3. The survivor takes the other's reports, manual events and services; the other
           is frozen with ``merged_into``; ids that pointed at it point at the survivor.
        """
        other = self._root(other_id)
        if other is None or other.id == root.id:
            root.add_manual(record)  # kept: the timeline says a merge was asked
            self._reindex(root)
            return None
        older_first = sorted([(root.span()[0], root.opened_position, root.id),
                              (other.span()[0], other.opened_position, other.id)])
        survivor = self._incidents[older_first[0][2]]
        absorbed = self._incidents[older_first[1][2]]
        self._absorb(survivor, absorbed, record.recorded_at)
        survivor.add_manual(record)
        self._reindex(survivor)
        return survivor

    # --- Bookkeeping --------------------------------------------------------------------

    def _service(self, name: str) -> ServiceState:
        svc = self._services.get(name)
        if svc is None:
            svc = self._services[name] = ServiceState(name=name)
        return svc

    def _new_id(self, service: str, signal: Signal) -> str:
        attempt = 0
        while ((candidate := incident_id_for(service, signal, attempt)) in self._incidents
               or candidate in self._cold_home):  # an archived id is never reused
            attempt += 1
        return candidate

    def _open(self, service: str, fact: Fact) -> IncidentState:
        """A new incident, named after the failure that opens it."""
        inc = self._create(service, self._new_id(service, fact.signal),
                           texts.title_for(service, fact.signal), fact.position)
        inc.origin = (fact.subject_key, fact.signal.occurred_at)
        return inc

    def _create(self, service: str, inc_id: str, title: str, position: int) -> IncidentState:
        inc = IncidentState(id=inc_id, home=service, title=title, opened_position=position,
                            services={service})
        self._service(service).incidents.add(inc_id)
        self._incidents[inc_id] = inc
        self._by_service.setdefault(service, set()).add(inc_id)
        self._dirty.add(inc_id)
        self._recent.add(inc_id)
        self._changed_services.add(service)
        return inc  # indexed once it has a member (an empty incident has no span yet)

    def _register(self, inc: IncidentState) -> None:
        self._incidents[inc.id] = inc
        for service in inc.services:
            self._by_service.setdefault(service, set()).add(inc.id)
        if inc.merged_into is None:
            for subject in inc.lines:
                self._lines_of.setdefault(subject, set()).add(inc.id)
        else:
            for service in inc.services:
                self._frozen.setdefault(service, set()).add(inc.id)
        self._reindex(inc, adopt=False)  # a dump holds no stray inside a span

    def _reindex(self, inc: IncidentState, *, adopt: bool = True) -> None:
        """Index ``inc`` under its span; then (``adopt``) its acknowledgements follow
        the span: those it no longer holds leave (to the incident whose span holds
        them, else strays), strays it now holds join (``_apply_ack``)."""
        if inc.merged_into is not None:
            return
        span = inc.span()
        leaving = [] if not adopt or not inc.acks else [
            f for f in inc.acks.values() if f.signal.occurred_at < span[0] or (
                span[1] is not None and f.signal.occurred_at > span[1])]
        if leaving:
            leaving.sort(key=lambda g: g.key)
            for f in leaving:
                del inc.acks[f.id]
                self._touch(inc.id)
        for service in sorted(inc.services):
            index = self._index.get(service)
            if index is None:
                index = self._index[service] = _Index()
            index.put(inc.id, span)
            if adopt:
                self._adopt(inc, service, span)
                svc = self._services.get(service)
                if svc is not None:  # the deploys its timeline window now reaches
                    self._thaw_facts(svc, span[0] - self._config.deploy_lookback)
        for f in leaving:  # sorted above
            self._joins[f.id] = self._apply_ack(self._service(self.service_of(f.signal)), f)

    def _adopt(self, inc: IncidentState, service: str,
               span: tuple[datetime, datetime | None]) -> None:
        """Stray acknowledgements of ``service`` inside ``span`` join ``inc``: the
        incident they belong to has come (``_apply_ack``)."""
        svc = self._services.get(service)
        if svc is None or not svc.strays:
            return
        lo = bisect_left(svc.strays, span[0], key=lambda f: f.signal.occurred_at)
        hi = len(svc.strays) if span[1] is None else bisect_right(
            svc.strays, span[1], key=lambda f: f.signal.occurred_at)
        if lo >= hi:
            return
        for fact in svc.strays[lo:hi]:
            inc.acks[fact.id] = fact
            self._joins[fact.id] = inc.id
        del svc.strays[lo:hi]
        self._changed_services.add(service)
        self._touch(inc.id)

    def _forget(self, inc_id: str) -> None:
        inc = self._incidents.pop(inc_id)
        for service in inc.services:
            self._by_service.get(service, set()).discard(inc_id)
            self._frozen.get(service, set()).discard(inc_id)
            index = self._index.get(service)
            if index is not None:
                index.drop(inc_id)
        for subject in inc.lines:
            self._lines_of.get(subject, set()).discard(inc_id)
        self._services[inc.home].incidents.discard(inc_id)
        self._views.pop(inc_id, None)
        self._dirty.discard(inc_id)

    def _root(self, inc_id: str) -> IncidentState | None:
        inc = self._held(inc_id)
        while inc is not None and inc.merged_into is not None:
            inc = self._held(inc.merged_into)
        return inc

    def _held(self, inc_id: str) -> IncidentState | None:
        """The incident, brought back from the archive if retention moved it there."""
        inc = self._incidents.get(inc_id)
        if inc is None and inc_id in self._cold_home:
            inc = self._thaw(inc_id)
        return inc

    # --- The archive ------------------------------------------------------------------

    def _archive(self, inc_id: str) -> None:
        """Retention: the incident leaves memory for its home service's archive, whole
        (its state, compressed), findable by id and by span."""
        inc = self._incidents[inc_id]
        started, resolved = inc.span()
        # Found by its reach: its span, and every moment of its lines (an engineer's
        # resolution may end it before a recovery that still joins it).
        firsts = [line.moments[0][0] for line in inc.lines.values() if line.moments]
        lasts = [line.moments[-1][0] for line in inc.lines.values() if line.moments]
        started = min([started, *firsts])
        resolved = None if resolved is None else max([resolved, *lasts])
        entry = ColdIncident(inc.id, started, resolved, inc.merged_into,
                             tuple(sorted(inc.services)), pack(incident_state_to_json(inc)))
        self._forget(inc_id)
        self._services[inc.home].cold[inc_id] = entry
        self._cold_register(entry, inc.home)

    def _thaw(self, inc_id: str) -> IncidentState:
        """Bring an archived incident back, with the recoveries and deploys its
        timeline window needs: it is as if it had never left (TIMELINE.md rule 11)."""
        home = self._cold_home[inc_id]
        svc = self._services[home]
        entry = svc.cold.pop(inc_id)
        self._cold_unregister(entry)
        inc = incident_state_from_json(unpack(entry.blob))
        svc.incidents.add(inc_id)
        self._register(inc)
        for service in entry.services:
            if service in self._services:
                self._thaw_facts(self._services[service],
                                 entry.started_at - self._config.deploy_lookback)
        self._changed_services.add(home)
        return inc

    def _thaw_touching(self, cold: dict[str, _Index], service: str, start: datetime,
                       end: datetime | None, before: timedelta, after: timedelta) -> None:
        index = cold.get(service)
        if index is not None and index.placed:
            for inc_id in index.touching(start, end, before, after):
                self._thaw(inc_id)

    def _thaw_facts(self, svc: ServiceState, since: datetime) -> None:
        """Bring back archived recoveries and deploys dated ``since`` or later."""
        if not svc.cold_facts or svc.cold_facts[-1].latest < since:
            return  # kept by ``latest``: the common case costs one comparison
        at = bisect_left(svc.cold_facts, since, key=lambda c: c.latest)
        for chunk in svc.cold_facts[at:]:
            for tag, data in unpack(chunk.blob):
                fact = fact_from_json(data)
                if tag == "d":
                    insort(svc.deploys, fact, key=lambda f: f.key)
                else:
                    insort(svc.history.setdefault(fact.subject_key, []), fact,
                           key=lambda f: f.key)
        del svc.cold_facts[at:]
        self._changed_services.add(svc.name)

    def _cold_register(self, entry: ColdIncident, home: str) -> None:
        self._cold_home[entry.id] = home
        cold = self._cold_live if entry.merged_into is None else self._cold_frozen
        for service in entry.services:
            cold.setdefault(service, _Index()).put(
                entry.id, (entry.started_at, entry.resolved_at))
        if entry.merged_into is not None:
            self._cold_into.setdefault(entry.merged_into, set()).add(entry.id)

    def _cold_unregister(self, entry: ColdIncident) -> None:
        self._cold_home.pop(entry.id, None)
        cold = self._cold_live if entry.merged_into is None else self._cold_frozen
        for service in entry.services:
            index = cold.get(service)
            if index is not None:
                index.drop(entry.id)
        if entry.merged_into is not None:
            self._cold_into.get(entry.merged_into, set()).discard(entry.id)

    def _touch(self, inc_id: str) -> None:
        """Call when changing anything an incident renders from, so that the incident is
        rendered (once) and reported by the next ``take_changes``."""
        self._dirty.add(inc_id)
        self._recent.add(inc_id)
        self._views.pop(inc_id, None)
        self._changed_services.add(self._incidents[inc_id].home)

    def _view(self, inc_id: str) -> Incident:
        view = self._views.get(inc_id)
        if view is None:
            inc = self._incidents[inc_id]
            started, resolved = inc.span()
            since = started - self._config.deploy_lookback
            deploys: list[Fact] = []
            for service in sorted(inc.services):
                svc = self._services.get(service)
                if svc is None:
                    continue
                lo = bisect_left(svc.deploys, since, key=lambda f: f.signal.occurred_at)
                hi = len(svc.deploys) if resolved is None else bisect_right(
                    svc.deploys, resolved, key=lambda f: f.signal.occurred_at)
                deploys += svc.deploys[lo:hi]
            view = self._views[inc_id] = render_incident(
                inc, deploys,
                default_severity=self._config.default_severity,
                deploy_lookback=self._config.deploy_lookback,
                cache=self._render_cache,
            )
        return view

    def _prune(self, svc: ServiceState) -> None:
        """Retention, in data time (the latest receipt of the service's signals), so that
        a straight fold and a restored one forget the same things at the same events.

        What is dropped goes to the service's archive (``_archive``, ``cold_facts``),
        never lost: whatever touches it later brings it back first.

        1. Each event: drop the incidents it touched that are resolved before the cutoff
           (a late recovery may resolve one already past retention). An incident
           changed since the last ``take_changes`` is rendered before it is forgotten,
           so that its last change is still reported (one batch may hold both).
        2. Whenever the service's data time enters a new hour (a function of the
           watermark, so a restored engine agrees), the full pass: drop every resolved
           incident of the service resolved before the cutoff, and those merged away
           before it; then drop history and deploys older than any held incident
           covering the service could show (its start minus the deploy lookback), and
           older than the cutoff.
        """
        if svc.watermark is None:
            return
        cutoff = svc.watermark - self._config.retention
        hour = _hour(svc.watermark)
        full = self._pruned.get(svc.name) != hour
        self._pruned[svc.name] = hour
        candidates = svc.incidents if full else svc.incidents & self._recent
        for inc_id in sorted(candidates):
            inc = self._incidents[inc_id]
            if inc.merged_into is not None:
                drop = inc.merged_at is not None and inc.merged_at < cutoff
            else:
                resolved = inc.span()[1]
                # Resolved by hand while a subject still fails: its recovery, whenever
                # it comes, joins it; kept in memory (rare) rather than found by any fact.
                drop = resolved is not None and resolved < cutoff and not inc.agg.open_lines
            if drop:
                self._changed_services.add(svc.name)
                if inc_id in self._dirty:  # its last change is not reported yet
                    self._gone[inc_id] = self._view(inc_id)
                self._archive(inc_id)
        if not full:
            return
        starts = [self._incidents[i].span()[0]
                  for i in sorted(self._by_service.get(svc.name, ()))]
        horizon = min([cutoff, *starts]) - self._config.deploy_lookback
        leaving: list[tuple[str, Fact]] = []
        if svc.deploys and svc.deploys[0].signal.occurred_at < horizon:
            leaving += [("d", d) for d in svc.deploys if d.signal.occurred_at < horizon]
            svc.deploys = [d for d in svc.deploys if d.signal.occurred_at >= horizon]
        for key in sorted(svc.history):
            if svc.history[key][0].signal.occurred_at >= horizon:  # sorted: nothing older
                continue
            leaving += [("h", h) for h in svc.history[key] if h.signal.occurred_at < horizon]
            kept = [h for h in svc.history[key] if h.signal.occurred_at >= horizon]
            if kept:
                svc.history[key] = kept
            else:
                del svc.history[key]
        if leaving:
            latest = max(f.signal.occurred_at for _, f in leaving)
            insort(svc.cold_facts, ColdFacts(latest, pack(
                [[tag, fact_to_json(f)] for tag, f in leaving])), key=lambda c: c.latest)


@dataclass(slots=True)
class _FailingRun:
    """A failing run of one subject in an incident, and the reports it is made of."""

    subject: SubjectKey
    start: datetime
    end: datetime | None
    reports: list[Report]


def _runs(subject: SubjectKey, line: Line) -> list[_FailingRun]:
    """A line cut into runs: a failure while not failing opens one, the next recovery
    ends it; a report belongs to the run of its first moment; a quiet recovery (ending
    nothing) goes with the run before it, else the first."""
    runs: list[_FailingRun] = []
    current: _FailingRun | None = None
    placed: set[int] = set()
    quiet: list[Report] = []
    for at, _, _, phase, report in line.moments:
        fresh = id(report) not in placed
        placed.add(id(report))
        if phase == FAILURE:
            if current is None:
                current = _FailingRun(subject, at, None, [])
                runs.append(current)
            if fresh:
                current.reports.append(report)
        elif current is not None:
            current.end = at
            if fresh:
                current.reports.append(report)
            current = None
        elif fresh:
            if runs:
                runs[-1].reports.append(report)
            else:
                quiet.append(report)
    if runs:
        runs[0].reports += quiet
    return runs


def _run_end_after(line: Line, moment: Moment) -> datetime | None:
    """When the run a failure falls in ends: the first recovery after it in the line."""
    at = bisect_right(line.moments, moment_key(moment), key=moment_key)
    for following in line.moments[at:]:
        if following[3] == RECOVERY:
            return following[0]
    return None


def _drop_quiet_after(line: Line, moment: Moment) -> Report | None:
    """A recovery that ended a run before ``moment`` came in front of it ends nothing
    now: it leaves the incident (kept in the service's history, like any recovery that
    arrives when its subject is not failing), so members do not depend on arrival."""
    at = bisect_right(line.moments, moment_key(moment), key=moment_key)
    if at < len(line.moments):
        following = line.moments[at]
        if following[3] == RECOVERY and following[4].what == "recover":
            line.remove(following[4])
            return following[4]
    return None


def _end(span: tuple[datetime, datetime | None]) -> datetime:
    assert span[1] is not None
    return span[1]


def _hour(at: datetime | None) -> int:
    return -1 if at is None else int(at.timestamp()) // _PRUNE_EVERY


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
