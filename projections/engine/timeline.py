"""An incident's value: its four moments, verdict and timeline (TIMELINE.md).

``render_incident`` is a pure function of an ``IncidentState`` and the deploys of its
services: the engine decides which reports belong to which incident, this module
decides everything that can be read off them, in time order, whatever order they
arrived in. It runs once per changed incident per ``take_changes``, never per signal.

An alert storm puts thousands of subjects in one incident and the live projector renders
it after every small batch, so a render redoes only what changed: each subject's line
keeps what it gives (``_LineView`` on ``Line.view``, dropped by the state whenever the
line changes) and the incident the last render's sorted entries and totals (``_Memo`` on
``IncidentState.memo``). The answer never depends on them (``cache=False`` reads and keeps
none; tests/projections/test_render_cache.py holds the two equal).
"""

from __future__ import annotations

import sys
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Literal, cast

from ingest.manual import (
    IncidentAcknowledged,
    IncidentDeclared,
    IncidentImpactStartCorrected,
    IncidentMerged,
    IncidentNote,
    IncidentPublicitySet,
    IncidentResolved,
    IncidentSeveritySet,
)
from ingest.signals import Kind, Severity, State
from projections.engine import texts
from projections.engine.facts import NOT_LISTED, Fact, SubjectKey, is_pending
from projections.engine.model import DetectedBy, Incident, Marker, TimelineEntry, Verdict
from projections.engine.state import (
    FAILURE,
    IncidentState,
    Line,
    ManualRecord,
    Report,
    content_key,
)

GAP_SECONDS = 300.0  # a P1 detected more than 5 min after it started has a monitoring gap
CRITICAL_SECONDS = 1800.0  # over 30 min (or found by a human): we learned it from a user
FALLBACK_SEVERITY: Severity = "P3"

# Entries sort by (at, position, index, phase): the phase orders what one fact yields at
# one instant (a period's start before its end, a failure before its detection).
EntryKey = tuple[datetime, int, int, int]
_MANUAL_INDEX = -1  # manual events have no index in a delivery


@dataclass(slots=True)
class _Draft:
    key: EntryKey
    received_at: datetime
    source: str
    kind: Kind | Literal["manual"]
    subject: str
    state: State | Literal["note", "manual"]
    text: str
    severity: Severity | None = None
    action: str | None = None
    repeats: int = 0
    last_repeat_at: datetime | None = None
    candidate_factor: bool = False
    links: tuple[tuple[str, str], ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()
    marker: Marker | None = None
    name: str = ""

    def entry(self) -> TimelineEntry:
        return TimelineEntry(
            at=self.key[0],
            received_at=self.received_at,
            position=self.key[1],
            marker=self.marker,
            source=self.source,
            kind=self.kind,
            subject=self.subject,
            state=self.state,
            text=self.text,
            severity=self.severity,
            action=self.action,
            repeats=self.repeats,
            last_repeat_at=self.last_repeat_at,
            candidate_factor=self.candidate_factor,
            links=self.links,
            attributes=self.attributes,
            name=self.name,
        )


def _signal_draft(
    fact: Fact, at: datetime, phase: int, state: State, text: str, severity: Severity | None
) -> _Draft:
    s = fact.signal
    return _Draft(
        key=(at, fact.position, fact.index, phase),
        received_at=fact.received_at,
        source=s.source,
        kind=s.kind,
        subject=s.subject,
        state=state,
        text=text,
        severity=severity,
        action=s.action,
        links=tuple((link.url, link.title) for link in s.links),
        attributes=tuple(sorted(s.attributes)),
        name=texts.alert_name(s) if texts.alert_name(s) != s.subject else "",
    )


def _manual_draft(
    record: ManualRecord, at: datetime, subject: str, text: str, *, note: bool = False
) -> _Draft:
    return _Draft(
        key=(at, record.position, _MANUAL_INDEX, 0),
        received_at=record.recorded_at,
        source="manual",
        kind="manual",
        subject=subject,
        state="note" if note else "manual",
        text=text,
        marker="note" if note else None,
    )


@dataclass(slots=True)
class _EntryRun:
    """A subject's failing run while walking its line: the report its entry shows, how
    many failing reports told of it, and when the latest of them was notified."""

    at: datetime
    report: Report
    failing: int = 0
    last_notified: datetime | None = None

    def count(self, report: Report) -> None:
        if report.what != "fail":
            return  # a failing period seen after the fact ends the run: no repeat
        if is_pending(report.rep.signal):
            return  # the pending period dates the alert's report: it repeats nothing
        self.failing += report.count
        if self.last_notified is None or report.last_notified > self.last_notified:
            self.last_notified = report.last_notified


_NEVER = datetime.max.replace(tzinfo=UTC)
_NO_FIRST: EntryKey = (_NEVER, sys.maxsize, sys.maxsize, sys.maxsize)  # sorts last
_NO_END: EntryKey = (datetime.min.replace(tzinfo=UTC), -sys.maxsize, -sys.maxsize,
                     -sys.maxsize)  # sorts first
Notice = tuple[datetime, bool, int, int, "Fact | None"]
_NO_NOTICE: Notice = (_NEVER, True, sys.maxsize, sys.maxsize, None)
_notice_order = itemgetter(slice(0, 4))
_SETS: dict[frozenset[str], frozenset[str]] = {}  # a few distinct sets, shared


def _shared(values: set[str]) -> frozenset[str]:
    key = frozenset(values)
    return _SETS.setdefault(key, key)


@dataclass(slots=True, eq=False)
class _LineView:
    """What one subject's line gives the render (``_line_view``), kept on the line
    (``Line.view``) until the line changes: its entries (in line order, unmarked) and
    its share of the incident's aggregates. Sentinels stand for "none" so that the
    incident combines thousands of views with ``min``/``max``/``sum`` over ``map``."""

    subject: SubjectKey
    severities: Mapping[str, Severity]  # the default severities it was drafted with
    keys: tuple[EntryKey, ...]
    entries: tuple[TimelineEntry, ...]
    first_key: EntryKey  # its earliest run entry (``_NO_FIRST``: it never failed)
    last_end: EntryKey  # the entry that ended its last run, unless failing (``_NO_END``)
    failing: bool  # an open run at the end
    name: str | None  # the subject as its latest failure named it (None: never failed)
    since: datetime  # the earliest start of a failing report (``_NEVER``: none)
    notice: Notice  # the earliest notification of a failing report
    severity: Severity | None  # the highest severity of its failing reports
    uptime: bool  # a failing report of an uptime check
    sources: frozenset[str]
    kinds: frozenset[str]
    count: int  # the reports it folded


def _line_view(subject: SubjectKey, line: Line, severity: Callable[[Fact], Severity],
               default_severity: Mapping[str, Severity]) -> _LineView:
    """Replay one subject's line in time order and build its signal entries.

    1. A line's moments are sorted by (time, position, index, phase): a failure at its
       start, a failing period seen after the fact at its start and its end, any other
       state a recovery at ``occurred_at``; never by arrival.
    2. A failure opens a run and an entry, unless the subject is already failing. The
       entry counts as repeats every failing report of the run but one (TIMELINE.md
       rule 4), ``last_repeat_at`` the latest of their notifications (their send time
       or receipt: a repeat of an alert keeps the alert's start as its time). A failing
       period seen after the fact (a recovery carrying its start) is no failing
       report: it ends the run, or is the run, and repeats nothing. Counting reports
       rather than the ones after the first makes the count independent of arrival.
    3. Among failing reports at the instant a run opened, the entry shows the one
       received first (``content_key``), whichever reached the log first.
    4. A recovery while the subject is failing ends the run with an entry; a recovery
       of a subject that is not failing adds nothing (it says what we already knew).
    5. A subject is recovered when its last run has ended; the entry that ended it is
       kept to find ``resolved_at`` and its marker.

    Each line is walked alone: what it gives depends on its own reports only, so an
    unchanged line's view (and its entry objects) is reused by the next render.
    """
    drafts: list[_Draft] = []
    first_key, last_end = _NO_FIRST, _NO_END
    name: str | None = None

    def opened(run: _EntryRun) -> _Draft:
        r = run.report
        if r.what != "fail":
            text = texts.period_start_text(r.rep.signal)
        elif is_pending(r.rep.signal):
            text = texts.pending_text(r.rep.signal)
        else:
            text = texts.state_text(r.rep.signal, "failing")
        draft = _signal_draft(r.rep, run.at, 0, "failing", text, severity(r.rep))
        if run.failing > 1:
            draft.repeats, draft.last_repeat_at = run.failing - 1, run.last_notified
        drafts.append(draft)
        return draft

    run: _EntryRun | None = None
    for at, _, _, phase, report in line.moments:
        if phase == FAILURE:
            name = report.rep.signal.subject
            if run is None:
                run = _EntryRun(at, report)
                last_end = _NO_END
            elif at == run.at and (content_key(report.what, report.rep)
                                   < content_key(run.report.what, run.report.rep)):
                run.report = report
            run.count(report)
        elif run is not None:
            first_key = min(first_key, opened(run).key)
            run = None
            s = report.rep.signal
            state: State = "ok" if s.state == "failing" else s.state
            draft = _signal_draft(report.rep, at, 1, state, texts.state_text(s, state), None)
            drafts.append(draft)
            last_end = draft.key
    if run is not None:
        first_key = min(first_key, opened(run).key)

    since, notice = _NEVER, _NO_NOTICE
    highest: Severity | None = None
    uptime = False
    sources: set[str] = set()
    kinds: set[str] = set()
    count = 0
    for r in line.reports.values():
        count += r.count
        sources.add(r.rep.signal.source)
        kinds.add(r.kind)
        if not r.failing:
            continue
        since = min(since, r.since)
        n = r.notice
        candidate: Notice = (n.notified, is_pending(n.signal), n.position, n.index, n)
        if candidate[:4] < notice[:4]:  # equal: the first, as ``min`` keeps it
            notice = candidate
        level = severity_of(r, default_severity)
        highest = level if highest is None else min(highest, level)
        uptime = uptime or r.kind == "uptime"
    return _LineView(
        subject=subject, severities=default_severity,
        keys=tuple(d.key for d in drafts), entries=tuple(d.entry() for d in drafts),
        first_key=first_key, last_end=last_end, failing=run is not None, name=name,
        since=since, notice=notice, severity=highest, uptime=uptime,
        sources=_shared(sources), kinds=_shared(kinds), count=count)


def _count(counts: dict[str, int], value: str, step: int) -> bool:
    """Add ``step`` to a multiset; whether ``value`` entered or left it."""
    n = counts.get(value, 0) + step
    if n:
        counts[value] = n
    else:
        del counts[value]
    return n == step or n == 0


@dataclass(slots=True, eq=False)
class _Totals:
    """The incident's aggregates over its lines' views, kept as views enter and leave
    (``enter``, ``leave``) instead of recomputed from thousands of them: multisets and
    counts exactly; each extreme (``since``, ``notice``, ``first``, ``last``) as its value
    or holder, None once unknown (its holder left, or a newcomer tied it), and then
    recomputed from all the views in line order (``settle``), as ``min``/``max`` would."""

    count: int = 0
    failing: int = 0  # views with an open run
    uptime: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    names: dict[str, int] = field(default_factory=dict)
    severities: dict[str, int] = field(default_factory=dict)
    toggled: set[str] = field(default_factory=set)  # names in or out since last asked
    since: datetime | None = None
    notice: Notice | None = None
    first: _LineView | None = None
    last: _LineView | None = None

    def enter(self, v: _LineView) -> None:
        self._step(v, 1)
        if self.since is not None and v.since < self.since:
            self.since = v.since
        if self.notice is not None and v.notice[4] is not None:
            if v.notice[:4] < self.notice[:4]:
                self.notice = v.notice
            elif v.notice[:4] == self.notice[:4]:
                self.notice = None
        if self.first is not None and v.first_key != _NO_FIRST:
            if v.first_key < self.first.first_key:
                self.first = v
            elif v.first_key == self.first.first_key:
                self.first = None
        if self.last is not None and v.last_end != _NO_END:
            if v.last_end > self.last.last_end:
                self.last = v
            elif v.last_end == self.last.last_end:
                self.last = None

    def leave(self, v: _LineView) -> None:
        self._step(v, -1)
        if self.since is not None and v.since == self.since:
            self.since = None
        if self.notice is not None and v.notice[:4] == self.notice[:4]:
            self.notice = None
        if self.first is v:
            self.first = None
        if self.last is v:
            self.last = None

    def _step(self, v: _LineView, step: int) -> None:
        self.count += step * v.count
        self.failing += step * v.failing
        self.uptime += step * v.uptime
        for source in v.sources:
            _count(self.sources, source, step)
        for kind in v.kinds:
            _count(self.kinds, kind, step)
        if v.name is not None and _count(self.names, v.name, step):
            self.toggled ^= {v.name}
        if v.severity is not None:
            _count(self.severities, v.severity, step)

    def settle(self, views: list[_LineView]) -> None:
        """Recompute the extremes that are unknown (O(n) in C: ``min``/``max`` over
        ``map``); equal values keep the first in line order, as before."""
        if self.since is None:
            self.since = min(map(attrgetter("since"), views), default=_NEVER)
        if self.notice is None:
            self.notice = min(map(attrgetter("notice"), views), key=_notice_order,
                              default=_NO_NOTICE)
        if self.first is None:
            self.first = min(views, key=attrgetter("first_key"), default=None)
        if self.last is None and not self.failing:
            self.last = max(views, key=attrgetter("last_end"), default=None)

    @classmethod
    def of(cls, views: list[_LineView]) -> _Totals:
        totals = cls()
        for v in views:
            totals._step(v, 1)
        totals.settle(views)
        return totals


@dataclass(slots=True, eq=False)
class _Memo:
    """The last render of an incident (``IncidentState.memo``): each line's view by
    subject and the entries of all of them sorted by key (unmarked), so that the next
    render sorts in only what changed. ``marked`` and ``others`` keep the entries made
    for markers and for acknowledgements, manual events, detection and deploys, so that
    an unchanged entry is the same object in the next render."""

    severities: Mapping[str, Severity]
    views: dict[SubjectKey, _LineView]
    keys: list[EntryKey]
    entries: list[TimelineEntry]
    subjects: tuple[str, ...]
    totals: _Totals
    # id(plain) -> (plain, marked)
    marked: dict[int, tuple[TimelineEntry, TimelineEntry]] = field(default_factory=dict)
    others: dict[EntryKey, TimelineEntry] = field(default_factory=dict)


@dataclass(slots=True)
class _Lines:
    """The lines' part of one render: each line's view (in line order), the lines'
    entries sorted by key, and what the memo must learn once the render is done."""

    views: list[_LineView]
    keys: list[EntryKey]
    entries: list[TimelineEntry]
    fresh: list[tuple[SubjectKey, Line, _LineView]]  # views drafted by this render
    gone: list[SubjectKey]  # subjects of the memo's views whose line is no more
    totals: _Totals


_view_of = attrgetter("view")


def _lines(inc: IncidentState, severity: Callable[[Fact], Severity],
           default_severity: Mapping[str, Severity], memo: _Memo | None) -> _Lines:
    """Each line's view: its cached one while it is unchanged (``Line.view``), else a
    new one; and the lines' entries sorted by key (stable, in line order on equal keys).

    With the last render's memo (``memo``), only the changed lines are visited: a line's
    view is set together with the memo (end of ``render_incident``), so every line that
    still has a view has the same one in ``memo.views``; the new views' entries enter the
    memo's sorted lists, and those of the views they replace, or of lines gone, leave
    (binary search). Keys are unique in practice (a fact's position and index); an
    equal key, or more change than that pays for, sorts everything again instead."""
    lines = inc.lines
    fresh: list[tuple[SubjectKey, Line, _LineView]] = []
    if memo is None:
        views: list[_LineView] = []
        for subject, line in lines.items():
            view = line.view
            if not isinstance(view, _LineView) or view.severities is not default_severity:
                view = _line_view(subject, line, severity, default_severity)
                fresh.append((subject, line, view))
            views.append(view)
        return _Lines(views, *_sort(views), fresh, [], _Totals.of(views))
    slots: list[_LineView | None] = list(map(_view_of, lines.values()))
    if None in slots:
        subjects, members = list(lines), list(lines.values())
        at = slots.index(None)
        while True:
            subject, line = subjects[at], members[at]
            view = slots[at] = _line_view(subject, line, severity, default_severity)
            before = memo.views.get(subject)
            if before is not None:
                _keep_equal(view, before)
            fresh.append((subject, line, view))
            try:
                at = slots.index(None, at + 1)
            except ValueError:
                break
    previous = memo.views
    replaced = [previous[s] for s, _, _ in fresh if s in previous]
    gone: list[SubjectKey] = []
    if len(previous) - len(replaced) > len(lines) - len(fresh):  # some lines are no more
        gone = sorted(previous.keys() - lines.keys())
    leaving = replaced + [previous[s] for s in gone]
    entering = [v for _, _, v in fresh]
    work = sum(len(v.keys) for v in leaving) + sum(len(v.keys) for v in entering)
    keys, entries = memo.keys, memo.entries
    views = cast(list[_LineView], slots)  # no None left
    totals = memo.totals
    for v in leaving:
        totals.leave(v)
    for v in entering:
        totals.enter(v)
    totals.settle(views)
    if work * 16 <= len(keys) and _patch(keys, entries, leaving, entering):
        return _Lines(views, keys, entries, fresh, gone, totals)
    return _Lines(views, *_sort(views), fresh, gone, totals)


def _keep_equal(view: _LineView, before: _LineView) -> None:
    """Reuse the entries of a line's former view that are equal to the new ones: an
    unchanged entry stays the same object (writers compare with ``is`` first)."""
    old = dict(zip(before.keys, before.entries, strict=True))
    kept = []
    for key, entry in zip(view.keys, view.entries, strict=True):
        was = old.get(key)
        kept.append(was if was is not None and was == entry else entry)
    view.entries = tuple(kept)


def _sort(views: list[_LineView]) -> tuple[list[EntryKey], list[TimelineEntry]]:
    keys = list(chain.from_iterable(v.keys for v in views))
    entries = list(chain.from_iterable(v.entries for v in views))
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return [keys[i] for i in order], [entries[i] for i in order]


def _patch(keys: list[EntryKey], entries: list[TimelineEntry], leaving: list[_LineView],
           entering: list[_LineView]) -> bool:
    """Take ``leaving``'s entries out of the sorted lists and put ``entering``'s in.
    False (the lists are then spoilt) on an equal key: only a full sort orders those."""
    for view in leaving:
        for key, entry in zip(view.keys, view.entries, strict=True):
            at = bisect_left(keys, key)
            if at == len(keys) or entries[at] is not entry:
                return False
            del keys[at]
            del entries[at]
    for view in entering:
        for key, entry in zip(view.keys, view.entries, strict=True):
            at = bisect_left(keys, key)
            if at < len(keys) and keys[at] == key:
                return False
            keys.insert(at, key)
            entries.insert(at, entry)
    return True


def _latest(records: Iterable[ManualRecord], kind: type) -> ManualRecord | None:
    found = [r for r in records if isinstance(r.event, kind)]
    return found[-1] if found else None  # records are in log order: the last one wins


def render_incident(
    inc: IncidentState,
    deploys: Iterable[Fact],
    *,
    default_severity: Mapping[str, Severity],
    deploy_lookback: timedelta,
    cache: bool = True,
) -> Incident:
    """The incident as the API shows it. Steps:

    1. Each subject's line gives its entries and its share of the aggregates
       (``_line_view``): repeats, failed and recovered subjects.
    2. ``started_at``: the engineer's latest correction, else the earliest failure (or a
       declaration's reported start, or the declaration itself when it gives none).
    3. ``detected_at``: the earliest notification of a failing report; a declaration
       wins, as a human detection, when no monitor notified strictly before it.
    4. ``acknowledged_at``: the earliest acknowledgement, from a page or an engineer.
    5. ``resolved_at``: the latest manual resolution, unless a failing signal received
       after it is dated after it (the incident reopened); else, once every subject that
       failed has recovered, the latest of those recoveries.
    6. Severity, latency (never negative), duration, verdict, detectors, publicity.
    7. The timeline: signals, deploys in the window, manual entries, each moment marked
       exactly once, ordered by (time, position).

    ``cache``: keep each line's view on the line (``Line.view``) and the sorted entries
    on the incident (``IncidentState.memo``), so that the next render redoes only the
    lines that changed since (the state drops a line's view whenever the line changes).
    The answer is the same either way (TIMELINE.md rule 11: the facts decide, not their
    arrival, nor what was remembered); an unchanged entry is then the same object.
    """
    records = inc.manual
    declarations = [r for r in records if isinstance(r.event, IncidentDeclared)]
    acks = sorted(inc.acks.values(), key=lambda f: f.key)

    def severity(fact: Fact) -> Severity:
        return fact.signal.severity or default_severity.get(fact.signal.source,
                                                            FALLBACK_SEVERITY)

    # 1. Signals, in time order.
    memo = inc.memo if cache and isinstance(inc.memo, _Memo) and (
        inc.memo.severities is default_severity) else None
    if cache:
        inc.memo = None  # until this render is done (an error leaves no half a memo)
        part = _lines(inc, severity, default_severity, memo)
    else:  # nothing cached is read, nor kept
        views = [_line_view(s, line, severity, default_severity)
                 for s, line in inc.lines.items()]
        part = _Lines(views, *_sort(views), [], [], _Totals.of(views))
    views, totals = part.views, part.totals
    others: list[_Draft] = []  # entries not of a line, in the order they sort after them

    # 2. started_at.
    correction = _latest(records, IncidentImpactStartCorrected)
    declared_starts = _declared_starts(declarations)
    since = totals.since
    started_at = _started_at(inc, None if since == _NEVER else since, correction,
                             declared_starts)

    # 3. detected_at.
    # Equal notifications: the delivery's own report before the pending period that
    # completes it (the same notification), whichever reached the log first (rule 11).
    notice = totals.notice
    first_notice = None if notice is None or notice[4] is None else notice
    first_declared = declarations[0] if declarations else None
    detected_by: DetectedBy = "monitor"
    detected_at: datetime | None = None
    first_detector: str | None = None
    if first_declared is not None and (
        first_notice is None or first_notice[0] >= first_declared.recorded_at
    ):
        detected_by = "human"
        detected_at = first_declared.recorded_at
    elif first_notice is not None:
        assert first_notice[4] is not None
        detected_at = first_notice[0]
        first_detector = first_notice[4].signal.subject

    # 4. acknowledged_at: the earliest of pages acknowledged and engineers' events.
    ack_moments: list[tuple[EntryKey, _Draft]] = []
    for f in acks:
        d = _signal_draft(f, f.signal.occurred_at, 0, f.signal.state, texts.ack_text(f.signal),
                          None)
        others.append(d)
        ack_moments.append((d.key, d))
    for r in records:
        if isinstance(r.event, IncidentAcknowledged):
            d = _manual_draft(r, r.event.at, inc.home, "Incident acknowledged")
            others.append(d)
            ack_moments.append((d.key, d))
    acknowledged_at: datetime | None = None
    if ack_moments:
        # Equal times: the one received first, whichever reached the log first (rule 11).
        first_ack = min(ack_moments, key=lambda m: (m[0][0], m[1].received_at, m[0]))[1]
        first_ack.marker = "acknowledged"
        acknowledged_at = first_ack.key[0]

    # 5. resolved_at.
    resolution = _latest(records, IncidentResolved)
    resolved_at: datetime | None = None
    resolved_draft: _Draft | None = None
    resolved_view: _LineView | None = None  # or the line whose recovery resolved it
    failed = bool(totals.names)
    if resolution is not None:
        assert isinstance(resolution.event, IncidentResolved)
        manual_at = resolution.event.resolved_at
        reopened = _reopened(resolution, [r for r in inc.reports() if r.failing])
        text = "Incident resolved" + (f": {resolution.event.text}" if resolution.event.text
                                      else "")
        if reopened:
            text += " (it failed again afterwards)"
        d = _manual_draft(resolution, manual_at, inc.home, text)
        others.append(d)
        if not reopened:
            resolved_at, resolved_draft = manual_at, d
    if resolved_draft is None and failed and not totals.failing:
        last = totals.last
        if last is not None and last.last_end != _NO_END:
            resolved_view, resolved_at = last, last.last_end[0]
    if resolved_draft is not None:
        resolved_draft.marker = "resolved"

    # 6. Severity, latency, verdict, detectors, publicity.
    incident_severity = _severity(records, cast(Iterable[Severity], totals.severities))
    latency = None if detected_at is None else max(0.0, (detected_at - started_at)
                                                   .total_seconds())
    duration = None if resolved_at is None else max(0.0, (resolved_at - started_at)
                                                    .total_seconds())
    verdict = _verdict(incident_severity, latency, detected_by)
    first_view = totals.first
    if first_view is not None and first_view.first_key == _NO_FIRST:
        first_view = None
    late_detector: str | None = None
    if first_view is not None:
        detector_key = None if first_notice is None else first_notice[4].subject_key  # type: ignore[union-attr]
        if detected_by == "human" or detector_key != first_view.subject:
            late_detector = first_view.name
    publicity = _latest(records, IncidentPublicitySet)
    marked_public: bool | None = None
    if publicity is not None:
        assert isinstance(publicity.event, IncidentPublicitySet)
        public = marked_public = publicity.event.public
    else:
        public = incident_severity in ("P1", "P2") or totals.uptime > 0

    # 7. The timeline.
    started_view: _LineView | None = None
    if correction is not None:
        assert isinstance(correction.event, IncidentImpactStartCorrected)
        d = _manual_draft(correction, started_at, inc.home,
                          f"Impact start corrected to this time: {correction.event.evidence}")
        d.marker = "started"
        others.append(d)
    elif first_view is not None and first_view.first_key[0] == started_at:
        started_view = first_view
    elif declared_starts:
        _, r = min(declared_starts, key=lambda d: (d[0], d[1].position))
        d = _manual_draft(r, started_at, inc.home, "Impact started (as reported)")
        d.key = (started_at, r.position, _MANUAL_INDEX, -1)  # before its declaration entry
        d.marker = "started"
        others.append(d)

    if detected_by == "monitor" and first_notice is not None:
        noticed = first_notice[4]
        assert noticed is not None
        d = _signal_draft(noticed, first_notice[0], 2, "failing",
                          texts.detected_text(noticed.signal), severity(noticed))
        d.marker = "detected"
        others.append(d)

    for r in records:
        others.extend(_manual_entries(r, inc, first_declared, detected_by))

    window_start = started_at - deploy_lookback
    for f in deploys:
        at = f.signal.occurred_at
        if at < window_start or (resolved_at is not None and at > resolved_at):
            continue
        if f.signal.action in NOT_LISTED:  # a green CI run changed nothing (rule 7)
            continue
        d = _signal_draft(f, at, 0, f.signal.state, texts.deploy_text(f.signal), None)
        d.marker = "deploy"
        d.candidate_factor = at < started_at
        others.append(d)

    keys, entries = list(part.keys), list(part.entries)
    marked: dict[int, tuple[TimelineEntry, TimelineEntry]] = {}
    if started_view is not None:
        _mark(keys, entries, started_view, started_view.first_key, "started", memo, marked)
    if resolved_view is not None:
        _mark(keys, entries, resolved_view, resolved_view.last_end, "resolved", memo, marked)
    made: dict[EntryKey, TimelineEntry] = {}
    for d in others:  # after the lines' entries of an equal key, as a stable sort puts them
        entry = d.entry()
        before = None if memo is None else memo.others.get(d.key)
        if before is not None and before == entry:
            entry = before
        made[d.key] = entry
        place = bisect_right(keys, d.key)
        keys.insert(place, d.key)
        entries.insert(place, entry)

    subjects = None if memo is None else memo.subjects
    toggled, totals.toggled = totals.toggled, set()
    if subjects is None or len(toggled) > 8 or any(n not in totals.names for n in toggled):
        subjects = tuple(sorted(totals.names))
    else:  # a few new names: each goes in its place
        for name in sorted(toggled):
            place = bisect_left(subjects, name)
            subjects = (*subjects[:place], name, *subjects[place:])
    if cache:
        if memo is None:
            memo = _Memo(severities=default_severity, views=dict(zip(inc.lines, views,
                                                                     strict=True)),
                         keys=part.keys, entries=part.entries, subjects=subjects,
                         totals=totals)
        else:
            for subject in part.gone:
                del memo.views[subject]
            memo.keys, memo.entries, memo.subjects = part.keys, part.entries, subjects
        for subject, line, view in part.fresh:
            memo.views[subject] = line.view = view
        memo.marked, memo.others = marked, made
        inc.memo = memo
    sources = set(totals.sources) | {f.signal.source for f in acks}
    kinds = set(totals.kinds) | {f.signal.kind for f in acks}
    return Incident(
        id=inc.id,
        title=inc.title,
        service=inc.home,
        severity=incident_severity,
        status="open" if resolved_at is None else "resolved",
        started_at=started_at,
        detected_at=detected_at,
        acknowledged_at=acknowledged_at,
        resolved_at=resolved_at,
        detection_latency_seconds=latency,
        duration_seconds=duration,
        detected_by=detected_by,
        detection_verdict=verdict,
        version=inc.version,
        first_detector=first_detector,
        late_detector=late_detector,
        public=public,
        marked_public=marked_public,
        subjects=subjects,
        sources=tuple(sorted(sources)),
        kinds=tuple(sorted(kinds)),
        signal_count=totals.count + len(acks),
        merged_into=inc.merged_into,
        timeline=tuple(entries),
    )


def _mark(keys: list[EntryKey], entries: list[TimelineEntry], view: _LineView,
          key: EntryKey, marker: Marker, memo: _Memo | None,
          marked: dict[int, tuple[TimelineEntry, TimelineEntry]]) -> None:
    """Mark a line's entry in the sorted lists with a copy: the view's stays unmarked.
    The last render's marked copy of the same entry is reused (the same object)."""
    plain = view.entries[view.keys.index(key)]
    place = bisect_left(keys, key)
    while entries[place] is not plain:
        place += 1
    before = None if memo is None else memo.marked.get(id(plain))
    if before is not None and before[0] is plain and before[1].marker == marker:
        entry = before[1]
    else:
        entry = replace(plain, marker=marker)
    entries[place] = entry
    marked[id(plain)] = (plain, entry)  # holds ``plain``: its id is not reused meanwhile


def severity_of(report: Report, default_severity: Mapping[str, Severity]) -> Severity:
    """The highest severity a failing report carried (None: its source's default)."""
    source = report.rep.signal.source
    return min(s or default_severity.get(source, FALLBACK_SEVERITY)
               for s in report.severities)


def incident_span(inc: IncidentState) -> tuple[datetime, datetime | None]:
    """``(started_at, resolved_at)`` exactly as ``render_incident`` finds them, computed
    from the members alone. The engine keeps them incrementally (``IncidentState.span``);
    the property tests hold the two equal."""
    records = inc.manual
    failing = [r for r in inc.reports() if r.failing]
    declarations = [r for r in records if isinstance(r.event, IncidentDeclared)]
    started_at = _started_at(inc, min((r.since for r in failing), default=None),
                             _latest(records, IncidentImpactStartCorrected),
                             _declared_starts(declarations))
    resolution = _latest(records, IncidentResolved)
    if resolution is not None and not _reopened(resolution, failing):
        assert isinstance(resolution.event, IncidentResolved)
        return started_at, resolution.event.resolved_at
    states = [line.state() for line in inc.lines.values()]
    ends = [end for _, end in states if end is not None]
    if ends and not any(failing_now for failing_now, _ in states):
        return started_at, max(ends)
    return started_at, None


def _declared_starts(declarations: list[ManualRecord]) -> list[tuple[datetime, ManualRecord]]:
    """A declaration's reported start, else the declaration itself."""
    starts = []
    for r in declarations:
        assert isinstance(r.event, IncidentDeclared)
        starts.append((r.event.started_at or r.recorded_at, r))
    return starts


def _started_at(
    inc: IncidentState, since: datetime | None, correction: ManualRecord | None,
    declared_starts: list[tuple[datetime, ManualRecord]],
) -> datetime:
    """``since``: the earliest start of a failing report (None: none failed)."""
    if correction is not None:
        assert isinstance(correction.event, IncidentImpactStartCorrected)
        return correction.event.started_at
    natural = min([*(() if since is None else (since,)), *(d for d, _ in declared_starts)],
                  default=None)
    if natural is None:  # unreachable: an incident opens with a failure or a declaration
        natural = inc.fallback_start()
    return natural


def _reopened(resolution: ManualRecord, failing: list[Report]) -> bool:
    """A manual resolution stands until a failure received after it is dated after it."""
    assert isinstance(resolution.event, IncidentResolved)
    return any(r.last_position > resolution.position
               and r.at > resolution.event.resolved_at for r in failing)


def _severity(records: list[ManualRecord], severities: Iterable[Severity]) -> Severity:
    """The engineer's latest choice (declared or set), else the highest of the signals
    (P1 is highest, so the least string), else the fallback."""
    chosen: Severity | None = None
    for r in records:
        e = r.event
        if isinstance(e, IncidentSeveritySet) or (
            isinstance(e, IncidentDeclared) and e.severity is not None
        ):
            chosen = e.severity
    if chosen is not None:
        return chosen
    return min(severities, default=FALLBACK_SEVERITY)


def _verdict(severity: Severity, latency: float | None, detected_by: DetectedBy) -> Verdict:
    if detected_by == "human" or (latency is not None and latency > CRITICAL_SECONDS):
        return "critical"
    if severity == "P1" and latency is not None and latency > GAP_SECONDS:
        return "gap"
    return "ok"


def _manual_entries(
    r: ManualRecord, inc: IncidentState, first_declared: ManualRecord | None,
    detected_by: DetectedBy,
) -> list[_Draft]:
    """Entries for notes, declarations, severity, merges and publicity. Corrections,
    acknowledgements and resolutions are drafted where their moment is decided."""
    e = r.event
    if isinstance(e, IncidentNote):
        return [_manual_draft(r, e.at, inc.home, e.text, note=True)]
    if isinstance(e, IncidentDeclared):
        d = _manual_draft(r, r.recorded_at, e.service, f"Incident declared: {e.title}")
        if r is first_declared and detected_by == "human":
            d.marker = "detected"
        return [d]
    if isinstance(e, IncidentSeveritySet):
        text = f"Severity set to {e.severity}" + (f": {e.reason}" if e.reason else "")
        return [_manual_draft(r, r.recorded_at, inc.home, text)]
    if isinstance(e, IncidentMerged):
        text = f"Incidents {r.incident_id} and {e.other_id} merged"
        return [_manual_draft(r, r.recorded_at, inc.home, text)]
    if isinstance(e, IncidentPublicitySet):
        text = ("Marked as public: users saw it" if e.public
                else "Marked as internal: users did not see it")
        return [_manual_draft(r, r.recorded_at, inc.home, text)]
    return []
