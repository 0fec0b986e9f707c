"""An incident's value: its four moments, verdict and timeline (TIMELINE.md).

``render_incident`` is a pure function of an ``IncidentState`` and the deploys of its
services: the engine decides which reports belong to which incident, this module
decides everything that can be read off them, in time order, whatever order they
arrived in. It runs once per changed incident per ``take_changes``, never per signal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

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
from projections.engine.state import FAILURE, IncidentState, ManualRecord, Report, content_key

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


@dataclass(slots=True)
class _Walk:
    """The member reports replayed in time order (TIMELINE.md rules 3–5)."""

    drafts: list[_Draft] = field(default_factory=list)
    failing: set[SubjectKey] = field(default_factory=set)  # open failing runs at the end
    failed: dict[SubjectKey, str] = field(default_factory=dict)  # every subject that failed
    openers: list[tuple[_Draft, SubjectKey]] = field(default_factory=list)  # run entries
    recoveries: dict[SubjectKey, _Draft] = field(default_factory=dict)  # run-ending, last


def _walk(inc: IncidentState, severity: Callable[[Fact], Severity]) -> _Walk:
    """Replay each subject's line in time order and build the signal entries.

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
    5. A subject is recovered when its last run has ended; the ending entries are kept
       to find ``resolved_at`` and its marker.
    """
    walk = _Walk()

    def opened(subject: SubjectKey, run: _EntryRun) -> None:
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
        walk.drafts.append(draft)
        walk.openers.append((draft, subject))

    for subject, line in inc.lines.items():
        run: _EntryRun | None = None
        for at, _, _, phase, report in line.moments:
            if phase == FAILURE:
                walk.failed[subject] = report.rep.signal.subject
                if run is None:
                    run = _EntryRun(at, report)
                    walk.recoveries.pop(subject, None)
                elif at == run.at and (content_key(report.what, report.rep)
                                       < content_key(run.report.what, run.report.rep)):
                    run.report = report
                run.count(report)
            elif run is not None:
                opened(subject, run)
                run = None
                s = report.rep.signal
                state: State = "ok" if s.state == "failing" else s.state
                draft = _signal_draft(report.rep, at, 1, state, texts.state_text(s, state),
                                      None)
                walk.drafts.append(draft)
                walk.recoveries[subject] = draft
        if run is not None:
            opened(subject, run)
            walk.failing.add(subject)
    return walk


def _latest(records: Iterable[ManualRecord], kind: type) -> ManualRecord | None:
    found = [r for r in records if isinstance(r.event, kind)]
    return found[-1] if found else None  # records are in log order: the last one wins


def render_incident(
    inc: IncidentState,
    deploys: Iterable[Fact],
    *,
    default_severity: Mapping[str, Severity],
    deploy_lookback: timedelta,
) -> Incident:
    """The incident as the API shows it. Steps:

    1. Walk the member reports (``_walk``): entries, repeats, failed and recovered
       subjects.
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
    """
    records = inc.manual
    declarations = [r for r in records if isinstance(r.event, IncidentDeclared)]
    reports = inc.reports()
    failing = [r for r in reports if r.failing]
    acks = sorted(inc.acks.values(), key=lambda f: f.key)

    def severity(fact: Fact) -> Severity:
        return fact.signal.severity or default_severity.get(fact.signal.source,
                                                            FALLBACK_SEVERITY)

    # 1. Signals, in time order.
    walk = _walk(inc, severity)
    drafts = list(walk.drafts)

    # 2. started_at.
    correction = _latest(records, IncidentImpactStartCorrected)
    declared_starts = _declared_starts(declarations)
    started_at = _started_at(inc, failing, correction, declared_starts)

    # 3. detected_at.
    # Equal notifications: the delivery's own report before the pending period that
    # completes it (the same notification), whichever reached the log first (rule 11).
    first_notice = min(((r.notice.notified, is_pending(r.notice.signal), r.notice.position,
                         r.notice.index, r.notice) for r in failing),
                       key=lambda n: n[:4], default=None)
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
        detected_at = first_notice[0]
        first_detector = first_notice[4].signal.subject

    # 4. acknowledged_at: the earliest of pages acknowledged and engineers' events.
    ack_moments: list[tuple[EntryKey, _Draft]] = []
    for f in acks:
        d = _signal_draft(f, f.signal.occurred_at, 0, f.signal.state, texts.ack_text(f.signal),
                          None)
        drafts.append(d)
        ack_moments.append((d.key, d))
    for r in records:
        if isinstance(r.event, IncidentAcknowledged):
            d = _manual_draft(r, r.event.at, inc.home, "Incident acknowledged")
            drafts.append(d)
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
    if resolution is not None:
        assert isinstance(resolution.event, IncidentResolved)
        manual_at = resolution.event.resolved_at
        reopened = _reopened(resolution, failing)
        text = "Incident resolved" + (f": {resolution.event.text}" if resolution.event.text
                                      else "")
        if reopened:
            text += " (it failed again afterwards)"
        d = _manual_draft(resolution, manual_at, inc.home, text)
        drafts.append(d)
        if not reopened:
            resolved_at, resolved_draft = manual_at, d
    if resolved_draft is None and walk.failed and not walk.failing and walk.recoveries:
        resolved_draft = max(walk.recoveries.values(), key=lambda d: d.key)
        resolved_at = resolved_draft.key[0]
    if resolved_draft is not None:
        resolved_draft.marker = "resolved"

    # 6. Severity, latency, verdict, detectors, publicity.
    incident_severity = _severity(records, [severity_of(r, default_severity)
                                            for r in failing])
    latency = None if detected_at is None else max(0.0, (detected_at - started_at)
                                                   .total_seconds())
    duration = None if resolved_at is None else max(0.0, (resolved_at - started_at)
                                                    .total_seconds())
    verdict = _verdict(incident_severity, latency, detected_by)
    first_failure = min(walk.openers, key=lambda o: o[0].key, default=None)
    late_detector: str | None = None
    if first_failure is not None:
        first_subject = first_failure[1]
        detector_key = None if first_notice is None else first_notice[4].subject_key
        if detected_by == "human" or detector_key != first_subject:
            late_detector = walk.failed[first_subject]
    publicity = _latest(records, IncidentPublicitySet)
    marked_public: bool | None = None
    if publicity is not None:
        assert isinstance(publicity.event, IncidentPublicitySet)
        public = marked_public = publicity.event.public
    else:
        public = incident_severity in ("P1", "P2") or any(r.kind == "uptime" for r in failing)

    # 7. The timeline.
    if correction is not None:
        assert isinstance(correction.event, IncidentImpactStartCorrected)
        d = _manual_draft(correction, started_at, inc.home,
                          f"Impact start corrected to this time: {correction.event.evidence}")
        d.marker = "started"
        drafts.append(d)
    elif first_failure is not None and first_failure[0].key[0] == started_at:
        first_failure[0].marker = "started"
    elif declared_starts:
        _, r = min(declared_starts, key=lambda d: (d[0], d[1].position))
        d = _manual_draft(r, started_at, inc.home, "Impact started (as reported)")
        d.key = (started_at, r.position, _MANUAL_INDEX, -1)  # before its declaration entry
        d.marker = "started"
        drafts.append(d)

    if detected_by == "monitor" and first_notice is not None:
        f = first_notice[4]
        d = _signal_draft(f, first_notice[0], 2, "failing", texts.detected_text(f.signal),
                          severity(f))
        d.marker = "detected"
        drafts.append(d)

    for r in records:
        drafts.extend(_manual_entries(r, inc, first_declared, detected_by))

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
        drafts.append(d)

    drafts.sort(key=lambda d: d.key)
    sources = {r.rep.signal.source for r in reports} | {f.signal.source for f in acks}
    kinds = {r.kind for r in reports} | {f.signal.kind for f in acks}
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
        subjects=tuple(sorted(set(walk.failed.values()))),
        sources=tuple(sorted(sources)),
        kinds=tuple(sorted(kinds)),
        signal_count=sum(r.count for r in reports) + len(acks),
        merged_into=inc.merged_into,
        timeline=tuple(d.entry() for d in drafts),
    )


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
    started_at = _started_at(inc, failing, _latest(records, IncidentImpactStartCorrected),
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
    inc: IncidentState, failing: list[Report], correction: ManualRecord | None,
    declared_starts: list[tuple[datetime, ManualRecord]],
) -> datetime:
    if correction is not None:
        assert isinstance(correction.event, IncidentImpactStartCorrected)
        return correction.event.started_at
    natural = min([*(r.since for r in failing), *(d for d, _ in declared_starts)],
                  default=None)
    if natural is None:  # unreachable: an incident opens with a failure or a declaration
        natural = inc.fallback_start()
    return natural


def _reopened(resolution: ManualRecord, failing: list[Report]) -> bool:
    """A manual resolution stands until a failure received after it is dated after it."""
    assert isinstance(resolution.event, IncidentResolved)
    return any(r.last_position > resolution.position
               and r.at > resolution.event.resolved_at for r in failing)


def _severity(records: list[ManualRecord], severities: list[Severity]) -> Severity:
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
