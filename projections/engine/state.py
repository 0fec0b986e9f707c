"""The engine's state, per service, and its JSON form (``Engine.dump`` / ``Engine.load``).

Everything a later event can depend on lives here and nowhere else: rendered incidents
are a pure function of this state (``projections.engine.timeline``), so a restored engine fed
the rest of the log folds exactly like one fed the whole log. The aggregates an
``IncidentState`` keeps (``Aggregates``) are derived: never dumped, rebuilt on load.

An incident's signals are kept per subject as a ``Line`` of ``Report``s: equal reports
of one subject's state (the same failure sent again every ``repeat_interval``, the same
failing period listed in every later notification) are one report with a count, not one
fact each, so a storm of repeats costs memory and time in proportion to what differs.
"""

from __future__ import annotations

import base64
import sys
import zlib
from array import array
from bisect import bisect_left, insort
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

import orjson

from ingest.manual import (
    IncidentDeclared,
    IncidentImpactStartCorrected,
    IncidentResolved,
    ManualEvent,
    manual_event_from_json,
    manual_event_to_json,
)
from ingest.signals import Kind, Severity, format_time
from projections.engine.facts import (
    DEPLOY_FAILURES,
    Fact,
    FactId,
    SubjectKey,
    fact_from_json,
    fact_to_json,
    parse_time,
)

FORMAT = 6  # bump when the dump's shape changes; load refuses other formats
# 2: an incident's signals as per-subject reports with counts (repeats folded), acks apart.
# 3: each report keeps its latest notification (``last_notified``: when the last repeat
#    was sent). A format-2 checkpoint is refused: ``hindsight rebuild`` replaces it.
# 4: stray acknowledgements (``strays``): kept until the incident they belong to comes.
# 5: the archive (``cold``, ``cold_facts``): what retention moved out of memory.
# 6: each report lists the facts folded into it (``facts``, packed).

What = Literal["fail", "period", "recover"]
ReportKey = tuple[str, str, datetime, datetime]  # (what, kind, since, at)
# A moment of a line: (time, position, index, phase, report); phase 0 is a failure
# (a failing report, or a period's start), 1 a recovery (a recovery, or a period's end).
Moment = tuple[datetime, int, int, int, "Report"]
MomentKey = tuple[datetime, int, int, int]
FAILURE, RECOVERY = 0, 1


@dataclass(frozen=True, slots=True)
class ManualRecord:
    """A manual event as the log placed it, and the incident id it was posted to."""

    position: int
    recorded_at: datetime
    incident_id: str
    event: ManualEvent


def content_key(what: What, fact: Fact) -> tuple[Any, ...]:
    """Which of several equal reports an entry shows: the earliest received, then its
    content, and only then its log position. Arrival order never decides: the same
    failure reported live and again in its resolution shows the live report, whichever
    reached the log first."""
    s = fact.signal
    return (fact.received_at, what, s.state, s.summary, s.severity or "", s.action or "",
            s.links, s.attributes, fact.position, fact.index)


@dataclass(slots=True)
class Report:
    """Equal reports of one subject's state: the same ``what``, kind, start and time.

    - ``first``: the earliest (position, index): where the report sorts among moments
      at the same time (TIMELINE.md rule 3, ties by position in the log).
    - ``last_position``: the latest position (a manual resolution stands until a failure
      received after it is dated after it).
    - ``rep``: the fact its timeline entry shows (``content_key``); ``notice`` the
      earliest notification (``Fact.notified``, then log order).
    - ``severities``: every severity reported (None: the source's default).
    - ``last_notified``: the latest notification (``Fact.notified``): when the last of
      the equal reports was sent. Repeats of an alert carry its original start, so
      their own time says nothing of when they came (TIMELINE.md rule 4).
    - ``facts``: every fact folded in (``fact_code``: 8 bytes each), so that when the
      report moves to another incident (a merge, a split) each signal's row in
      ``signal_incidents`` follows it.
    """

    what: What
    kind: Kind
    since: datetime  # failing since (a period's start); a recovery's own time
    at: datetime  # occurred_at
    first: FactId
    last_position: int
    count: int
    rep: Fact
    notice: Fact
    severities: set[Severity | None]
    last_notified: datetime
    facts: array[int] = field(default_factory=lambda: array("q"))
    # The line holding it (``Line.insert``): folding a fact in drops that line's render
    # cache (``Line.view``). Never dumped, never copied, never compared.
    owner: Line | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, what: What, fact: Fact) -> Report:
        s = fact.signal
        since = fact.failing_since if what != "recover" else s.occurred_at
        return cls(what, s.kind, since, s.occurred_at, fact.id, fact.position, 1, fact,
                   fact, {s.severity}, fact.notified, array("q", [fact_code(fact.id)]))

    def fact_ids(self) -> list[FactId]:
        return [fact_id(code) for code in self.facts]

    @property
    def key(self) -> ReportKey:
        return (self.what, self.kind, self.since, self.at)

    @property
    def failing(self) -> bool:
        return self.what != "recover"

    def add(self, fact: Fact) -> None:
        """Fold one more equal report in (O(1))."""
        self.changed()
        self.count += 1
        self.first = min(self.first, fact.id)
        self.last_position = max(self.last_position, fact.position)
        # Repeats arrive later and notify later: decided on one comparison, mostly.
        if fact.received_at <= self.rep.received_at and (
                content_key(self.what, fact) < content_key(self.what, self.rep)):
            self.rep = fact
        if fact.notified <= self.notice.notified and (
                _notice_key(fact) < _notice_key(self.notice)):
            self.notice = fact
        self.severities.add(fact.signal.severity)
        self.last_notified = max(self.last_notified, fact.notified)
        self.facts.append(fact_code(fact.id))

    def absorb(self, other: Report) -> None:
        """Fold another incident's equal report in (merges)."""
        self.changed()
        if other.first == self.first and other.what == "recover":
            # One recovery may end runs in two incidents: merged, it is still one.
            self.count = max(self.count, other.count)
            self.facts = array("q", sorted(set(self.facts) | set(other.facts)))
        else:
            self.count += other.count
            self.facts.extend(other.facts)
        self.first = min(self.first, other.first)
        self.last_position = max(self.last_position, other.last_position)
        if content_key(self.what, other.rep) < content_key(self.what, self.rep):
            self.rep = other.rep
        if _notice_key(other.notice) < _notice_key(self.notice):
            self.notice = other.notice
        self.severities |= other.severities
        self.last_notified = max(self.last_notified, other.last_notified)

    def changed(self) -> None:
        """Call first in every method that changes the report: its line's render cache
        no longer holds."""
        if self.owner is not None:
            self.owner.view = None

    def copy(self) -> Report:
        return Report(self.what, self.kind, self.since, self.at, self.first,
                      self.last_position, self.count, self.rep, self.notice,
                      set(self.severities), self.last_notified, array("q", self.facts))

    def moments(self) -> list[Moment]:
        p, i = self.first
        if self.what == "fail":
            return [(self.since, p, i, FAILURE, self)]
        if self.what == "period":
            return [(self.since, p, i, FAILURE, self), (self.at, p, i, RECOVERY, self)]
        return [(self.at, p, i, RECOVERY, self)]


_INDEX_BITS = 20  # signals per delivery: far more than any tool sends in one


def fact_code(fact: FactId) -> int:
    """A fact id as one integer (position, then index in its delivery)."""
    return (fact[0] << _INDEX_BITS) | fact[1]


def fact_id(code: int) -> FactId:
    return (code >> _INDEX_BITS, code & ((1 << _INDEX_BITS) - 1))


def _notice_key(fact: Fact) -> tuple[datetime, int, int]:
    return (fact.notified, fact.position, fact.index)


@dataclass(slots=True)
class Line:
    """One subject's reports in one incident, and their moments in time order.

    ``view`` caches what rendering the line gives (``projections.engine.timeline``):
    derived, never dumped. It is dropped by the only ways a line changes: ``insert``,
    ``remove``, and a change of one of its reports (``Report.changed``, through
    ``Report.owner``). Change ``reports`` and ``moments`` through these methods only.
    """

    reports: dict[ReportKey, Report] = field(default_factory=dict)
    moments: list[Moment] = field(default_factory=list)
    view: Any = field(default=None, compare=False, repr=False)

    def insert(self, report: Report) -> None:
        self.view = None
        if report.owner is not None and report.owner is not self:
            report.owner.view = None  # (a report is in one line at a time)
        report.owner = self
        self.reports[report.key] = report
        for moment in report.moments():
            insort(self.moments, moment, key=moment_key)

    def remove(self, report: Report) -> None:
        self.view = None
        if report.owner is self:
            report.owner = None
        del self.reports[report.key]
        self.moments = [m for m in self.moments if m[4] is not report]

    def before_key(self, key: MomentKey) -> Moment | None:
        """The last moment sorting before ``key``, if any (O(log n))."""
        at = bisect_left(self.moments, key, key=moment_key)
        return self.moments[at - 1] if at > 0 else None

    def ends_run(self, moment: Moment) -> bool:
        """Whether a recovery moment (in the line) ends a failing run: the moment before
        it is a failure (TIMELINE.md rules 3–4)."""
        previous = self.before_key(moment_key(moment))
        return previous is not None and previous[3] == FAILURE

    def state(self) -> tuple[bool, datetime | None]:
        """(failing at the end, when its last run ended): walk back from the end to the
        last failure; the recovery right after it ended the last run."""
        moments = self.moments
        if not moments:
            return False, None
        if moments[-1][3] == FAILURE:
            return True, None
        ended: datetime | None = None
        for m in reversed(moments):
            if m[3] == FAILURE:
                return False, ended
            ended = m[0]
        return False, None  # recoveries only: nothing failed here


def moment_key(m: Moment) -> MomentKey:
    return (m[0], m[1], m[2], m[3])


@dataclass(slots=True)
class Aggregates:
    """What placing a signal needs of an incident, kept up to date per fact (O(1)
    amortised) instead of recomputed from every member: never dumped, rebuilt on load.

    ``end_max`` may be stale (``end_stale``) after a run's end moved earlier or a closed
    subject failed again; it is recomputed from the lines only when asked for while no
    subject is failing.
    """

    first_since: datetime | None = None  # earliest failure (natural started_at)
    last_since: datetime | None = None  # latest failing report's start
    lines: dict[SubjectKey, tuple[bool, datetime | None]] = field(default_factory=dict)
    open_lines: int = 0
    end_max: datetime | None = None
    end_stale: bool = False
    manual_start: datetime | None = None  # a correction, else the earliest declared start
    corrected: bool = False
    resolution: ManualRecord | None = None  # the latest manual resolution
    reopened: bool = False  # a failure received after it is dated after it


@dataclass(slots=True)
class IncidentState:
    """What an incident is made of: its member reports, acknowledgements and manual
    events.

    ``home`` is the service it belongs to (dumped with it); ``services`` are the services
    whose signals join it (its home plus those of incidents merged into it).
    ``version`` counts the manual events posted to this id (its stream's length).
    ``origin`` is the (subject, occurred_at) its id was derived from: when the incident
    splits, the part holding it keeps the id.
    """

    id: str
    home: str
    title: str
    opened_position: int
    services: set[str]
    lines: dict[SubjectKey, Line] = field(default_factory=dict)
    acks: dict[FactId, Fact] = field(default_factory=dict)
    manual: list[ManualRecord] = field(default_factory=list)
    version: int = 0
    merged_into: str | None = None
    merged_at: datetime | None = None
    origin: tuple[SubjectKey, datetime] | None = None
    agg: Aggregates = field(default_factory=Aggregates)
    # The last render's sorted signal entries (``projections.engine.timeline``): derived
    # from the lines' views alone, never dumped.
    memo: Any = field(default=None, compare=False, repr=False)

    def drop_caches(self) -> None:
        """Forget every render cache (memory; they are rebuilt on demand)."""
        self.memo = None
        for line in self.lines.values():
            line.view = None

    def add_manual(self, record: ManualRecord) -> None:
        insort(self.manual, record, key=lambda r: r.position)
        self.refresh_manual()

    @property
    def pinned(self) -> bool:
        """An engineer spoke about it: its members are never split off or auto-merged."""
        return bool(self.manual)

    def reports(self) -> list[Report]:
        return [r for line in self.lines.values() for r in line.reports.values()]

    # --- Aggregates -------------------------------------------------------------------

    def note_failure(self, report: Report, fact_position: int) -> None:
        a = self.agg
        if a.first_since is None or report.since < a.first_since:
            a.first_since = report.since
        if a.last_since is None or report.since > a.last_since:
            a.last_since = report.since
        res = a.resolution
        if res is not None and fact_position > res.position:
            assert isinstance(res.event, IncidentResolved)
            if report.at > res.event.resolved_at:
                a.reopened = True

    def note_line(self, subject: SubjectKey) -> None:
        """Refresh one subject's (failing, last end) after its line changed."""
        a = self.agg
        line = self.lines.get(subject)
        before = a.lines.pop(subject, (False, None))
        if before[0]:
            a.open_lines -= 1
        if line is None:
            a.end_stale = a.end_stale or before[1] is not None
            return
        now = line.state()
        a.lines[subject] = now
        if now[0]:
            a.open_lines += 1
        if now[1] is not None and (a.end_max is None or now[1] > a.end_max):
            a.end_max = now[1]
        if before[1] is not None and (now[1] is None or now[1] < before[1]):
            a.end_stale = True  # the largest end may have been this one's

    def refresh(self) -> None:
        """Recompute every aggregate from the members (load, merge, split)."""
        self.agg = Aggregates()
        for report in self.reports():
            if report.failing:
                self.note_failure(report, 0)
        for subject in self.lines:
            self.note_line(subject)
        self.agg.end_stale = False
        self.refresh_manual()

    def refresh_manual(self) -> None:
        a = self.agg
        corrections = [r for r in self.manual
                       if isinstance(r.event, IncidentImpactStartCorrected)]
        declared = [r.event.started_at or r.recorded_at for r in self.manual
                    if isinstance(r.event, IncidentDeclared)]
        if corrections:
            event = corrections[-1].event
            assert isinstance(event, IncidentImpactStartCorrected)
            a.manual_start, a.corrected = event.started_at, True
        else:
            a.manual_start, a.corrected = min(declared, default=None), False
        resolutions = [r for r in self.manual if isinstance(r.event, IncidentResolved)]
        a.resolution = resolutions[-1] if resolutions else None
        a.reopened = False
        if a.resolution is not None:
            res = a.resolution
            assert isinstance(res.event, IncidentResolved)
            a.reopened = any(r.failing and r.last_position > res.position
                             and r.at > res.event.resolved_at for r in self.reports())

    def span(self) -> tuple[datetime, datetime | None]:
        """``(started_at, resolved_at)`` exactly as ``render_incident`` finds them, from
        the aggregates (O(1) unless the latest end must be recomputed)."""
        a = self.agg
        if a.corrected:
            assert a.manual_start is not None
            started = a.manual_start
        else:
            candidates = [t for t in (a.first_since, a.manual_start) if t is not None]
            started = min(candidates) if candidates else self.fallback_start()
        if a.resolution is not None and not a.reopened:
            assert isinstance(a.resolution.event, IncidentResolved)
            return started, a.resolution.event.resolved_at
        if a.open_lines or not self.agg.lines:
            return started, None
        if a.end_stale:
            ends = [end for _, end in a.lines.values() if end is not None]
            a.end_max = max(ends, default=None)
            a.end_stale = False
        return started, a.end_max

    def fallback_start(self) -> datetime:
        """Unreachable in practice: an incident opens with a failure or a declaration."""
        times = [r.recorded_at for r in self.manual] or [
            r.rep.received_at for r in self.reports()] or [
            f.received_at for f in self.acks.values()]
        return min(times)


@dataclass(frozen=True, slots=True)
class ColdIncident:
    """An incident retention moved out of memory: its full state, compressed
    (``pack``), and what finding it again needs: its reach (``started_at`` to
    ``resolved_at``, widened to every moment of its lines), the incident it was merged
    into, and the services it covers."""

    id: str
    started_at: datetime
    resolved_at: datetime | None
    merged_into: str | None
    services: tuple[str, ...]
    blob: bytes


@dataclass(frozen=True, slots=True)
class ColdFacts:
    """Recoveries (history) and deploys retention moved out of memory in one pass,
    compressed; ``latest`` is the latest ``occurred_at`` among them."""

    latest: datetime
    blob: bytes


def pack(value: Any) -> bytes:
    """JSON, compressed: deterministic bytes for a deterministic value."""
    return zlib.compress(orjson.dumps(value), 6)


def unpack(blob: bytes) -> Any:
    return orjson.loads(zlib.decompress(blob))


@dataclass(slots=True)
class ServiceState:
    """Per service: subject states, the kept recoveries (history), deploys, watermark.

    - ``subjects``: each subject's latest signal by (occurred_at, position, index).
    - ``history``: per subject, recoveries (``ok``) by key (kept: a late failing signal may
      need the recovery that already arrived).
    - ``deploys``: every deploy fact, by (occurred_at, position, index).
    - ``outcomes``: per deploy subject, its latest succeeded/failed/pipeline_failed.
    - ``strays``: acknowledgements no incident's span holds yet, by key (TIMELINE.md
      rule 11: one that arrives before its failure applies when the failure arrives).
    - ``cold``, ``cold_facts``: the archive of the incidents (homed here), recoveries and
      deploys retention moved out of memory; a fact or manual event that touches them
      brings them back first, so forgetting never changes an answer (rule 11).
    - ``watermark``: the latest receipt time of the service's signals (data time, not a
      clock): retention is measured from it. Manual events never move it.
    """

    name: str
    watermark: datetime | None = None
    subjects: dict[SubjectKey, Fact] = field(default_factory=dict)
    history: dict[SubjectKey, list[Fact]] = field(default_factory=dict)
    deploys: list[Fact] = field(default_factory=list)
    outcomes: dict[SubjectKey, Fact] = field(default_factory=dict)
    strays: list[Fact] = field(default_factory=list)
    incidents: set[str] = field(default_factory=set)
    cold: dict[str, ColdIncident] = field(default_factory=dict)
    cold_facts: list[ColdFacts] = field(default_factory=list)
    # The subjects that can be risks (``Engine.risks``): a warning as the latest state of
    # a subject that is no deploy, a failure as a deploy subject's latest outcome. Kept
    # as the two maps change, so listing risks never walks a storm's thousands of
    # subjects; derived, never dumped.
    risky: set[SubjectKey] = field(default_factory=set)
    risky_outcomes: set[SubjectKey] = field(default_factory=set)

    def set_subject(self, fact: Fact) -> None:
        self.subjects[fact.subject_key] = fact
        s = fact.signal
        if s.kind != "deploy" and s.state == "warning":
            self.risky.add(fact.subject_key)
        else:
            self.risky.discard(fact.subject_key)

    def set_outcome(self, fact: Fact) -> None:
        self.outcomes[fact.subject_key] = fact
        if fact.signal.action in DEPLOY_FAILURES:
            self.risky_outcomes.add(fact.subject_key)
        else:
            self.risky_outcomes.discard(fact.subject_key)

    def see(self, at: datetime) -> None:
        if self.watermark is None or at > self.watermark:
            self.watermark = at


# --- JSON -------------------------------------------------------------------------------


def _facts(facts: list[Fact]) -> list[dict[str, Any]]:
    return [fact_to_json(f) for f in sorted(facts, key=lambda f: f.key)]


def _record_to_json(record: ManualRecord) -> dict[str, Any]:
    return {
        "position": record.position,
        "recorded_at": format_time(record.recorded_at),
        "incident_id": record.incident_id,
        "type": record.event.type,
        "data": manual_event_to_json(record.event),
    }


def _record_from_json(data: dict[str, Any]) -> ManualRecord:
    return ManualRecord(
        position=int(data["position"]),
        recorded_at=parse_time(data["recorded_at"]),
        incident_id=str(data["incident_id"]),
        event=manual_event_from_json(str(data["type"]), dict(data["data"])),
    )


def _report_to_json(r: Report) -> dict[str, Any]:
    out: dict[str, Any] = {
        "what": r.what,
        "first": list(r.first),
        "last_position": r.last_position,
        "count": r.count,
        "rep": fact_to_json(r.rep),
        "severities": sorted(r.severities, key=lambda s: s or ""),
        "last_notified": format_time(r.last_notified),
        "facts": _pack_codes(r.facts),
    }
    if r.notice.id != r.rep.id:  # usually the same fact: kept once
        out["notice"] = fact_to_json(r.notice)
    return out


def _report_from_json(data: dict[str, Any]) -> Report:
    rep = fact_from_json(data["rep"])
    what = cast(What, data["what"])
    report = Report.of(what, rep)
    report.first = (int(data["first"][0]), int(data["first"][1]))
    report.last_position = int(data["last_position"])
    report.count = int(data["count"])
    if "notice" in data:
        report.notice = fact_from_json(data["notice"])
    report.severities = {cast("Severity | None", s) for s in data["severities"]}
    report.last_notified = parse_time(data["last_notified"])
    report.facts = _unpack_codes(data["facts"])
    return report


def _pack_codes(codes: array[int]) -> str:
    """Fact codes, sorted, as differences (little-endian int64), compressed, base64: a
    storm of repeats costs a few bytes, not a number each."""
    values = sorted(codes)
    deltas = array("q", [b - a for a, b in zip([0, *values], values, strict=False)])
    if sys.byteorder == "big":
        deltas.byteswap()
    return base64.b64encode(zlib.compress(deltas.tobytes(), 6)).decode()


def _unpack_codes(text: str) -> array[int]:
    deltas = array("q", zlib.decompress(base64.b64decode(text)))
    if sys.byteorder == "big":
        deltas.byteswap()
    out = array("q")
    total = 0
    for d in deltas:
        total += d
        out.append(total)
    return out


def incident_state_to_json(inc: IncidentState) -> dict[str, Any]:
    reports = sorted(inc.reports(), key=lambda r: (r.rep.subject_key, r.since, r.at,
                                                   r.first, r.what, r.kind))
    return {
        "id": inc.id,
        "home": inc.home,
        "title": inc.title,
        "opened_position": inc.opened_position,
        "services": sorted(inc.services),
        "origin": None if inc.origin is None else [
            list(inc.origin[0]), format_time(inc.origin[1])],
        "reports": [_report_to_json(r) for r in reports],
        "acks": _facts(list(inc.acks.values())),
        "manual": [_record_to_json(r) for r in inc.manual],
        "version": inc.version,
        "merged_into": inc.merged_into,
        "merged_at": None if inc.merged_at is None else format_time(inc.merged_at),
    }


def incident_state_from_json(data: dict[str, Any]) -> IncidentState:
    origin = data["origin"]
    inc = IncidentState(
        id=str(data["id"]),
        home=str(data["home"]),
        title=str(data["title"]),
        opened_position=int(data["opened_position"]),
        services={str(s) for s in data["services"]},
        acks={f.id: f for f in map(fact_from_json, data["acks"])},
        manual=[_record_from_json(r) for r in data["manual"]],
        version=int(data["version"]),
        merged_into=data["merged_into"],
        merged_at=None if data["merged_at"] is None else parse_time(data["merged_at"]),
        origin=None if origin is None else (
            (str(origin[0][0]), str(origin[0][1])), parse_time(origin[1])),
    )
    for report in map(_report_from_json, data["reports"]):
        inc.lines.setdefault(report.rep.subject_key, Line()).insert(report)
    inc.refresh()
    return inc


def service_to_json(svc: ServiceState, incidents: list[IncidentState]) -> dict[str, Any]:
    """JSON values only (str/int/list/dict/None), every list in a fixed order."""
    return {
        "format": FORMAT,
        "service": svc.name,
        "watermark": None if svc.watermark is None else format_time(svc.watermark),
        "subjects": _facts(list(svc.subjects.values())),
        "history": _facts([f for key in sorted(svc.history) for f in svc.history[key]]),
        "deploys": _facts(svc.deploys),
        "outcomes": _facts(list(svc.outcomes.values())),
        "strays": _facts(svc.strays),
        "cold": [_cold_to_json(svc.cold[i]) for i in sorted(svc.cold)],
        "cold_facts": [{"latest": format_time(c.latest),
                        "blob": base64.b64encode(c.blob).decode()} for c in svc.cold_facts],
        "incidents": [incident_state_to_json(i) for i in sorted(incidents, key=lambda i: i.id)],
    }


def service_from_json(
    name: str, data: dict[str, Any]
) -> tuple[ServiceState, list[IncidentState]]:
    if data.get("format") != FORMAT:
        raise ValueError(f"unsupported engine state format: {data.get('format')!r}")
    if data.get("service") != name:
        raise ValueError(f"state of service {data.get('service')!r} loaded as {name!r}")
    svc = ServiceState(name=name)
    if data["watermark"] is not None:
        svc.watermark = parse_time(data["watermark"])
    for fact in map(fact_from_json, data["subjects"]):
        svc.set_subject(fact)
    for fact in map(fact_from_json, data["history"]):
        svc.history.setdefault(fact.subject_key, []).append(fact)  # dumped in key order
    svc.deploys = [fact_from_json(f) for f in data["deploys"]]
    for fact in map(fact_from_json, data["outcomes"]):
        svc.set_outcome(fact)
    svc.strays = [fact_from_json(f) for f in data["strays"]]
    for entry in map(_cold_from_json, data["cold"]):
        svc.cold[entry.id] = entry
    svc.cold_facts = [ColdFacts(parse_time(c["latest"]), base64.b64decode(c["blob"]))
                      for c in data["cold_facts"]]
    incidents = [incident_state_from_json(i) for i in data["incidents"]]
    svc.incidents = {i.id for i in incidents}
    return svc, incidents


def _cold_to_json(c: ColdIncident) -> dict[str, Any]:
    return {"id": c.id, "started_at": format_time(c.started_at),
            "resolved_at": None if c.resolved_at is None else format_time(c.resolved_at),
            "merged_into": c.merged_into, "services": list(c.services),
            "blob": base64.b64encode(c.blob).decode()}


def _cold_from_json(data: dict[str, Any]) -> ColdIncident:
    resolved = data["resolved_at"]
    return ColdIncident(
        id=str(data["id"]), started_at=parse_time(data["started_at"]),
        resolved_at=None if resolved is None else parse_time(resolved),
        merged_into=data["merged_into"], services=tuple(map(str, data["services"])),
        blob=base64.b64decode(data["blob"]))
