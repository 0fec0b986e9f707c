"""The parts of a postmortem draft: frozen values, each with its JSON form.

``projections/drafts/draft.py`` builds them from an incident; ``draft_markdown.py`` renders them.
Times in JSON are RFC 3339 UTC with ``Z``, durations in seconds, as in API.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from ingest.signals import format_time
from projections.engine.model import DetectedBy, Incident, Marker, Verdict

FactorKind = Literal["deploy", "certificate", "missed_run", "late_monitor", "no_monitor"]
ItemOrigin = Literal["recorded", "suggested"]

# The seven sections, in TIMELINE.md's order: (JSON id, heading).
SECTION_TITLES: tuple[tuple[str, str], ...] = (
    ("summary", "Summary"),
    ("timeline", "Timeline"),
    ("contributing_factors", "Contributing factors"),
    ("action_items", "Action items"),
    ("detection", "Detection time analysis"),
    ("review_cadence", "Review cadence"),
    ("public_summary", "Public summary"),
)


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One row of the draft's timeline. ``from_log`` is False for a row that only marks
    one of the four moments, where no entry of the log sits at that exact time."""

    number: int
    at: datetime
    moment: Marker | None
    source: str
    kind: str
    subject: str
    state: str
    text: str
    repeats: int = 0
    last_repeat_at: datetime | None = None
    from_log: bool = True
    received_at: datetime | None = None  # when the delivery or manual event reached us
    entry_index: int | None = None  # in the incident's timeline, sorted; None if added

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "at": format_time(self.at),
            "received_at": _time(self.received_at),
            "moment": self.moment,
            "source": self.source or None,
            "kind": self.kind or None,
            "subject": self.subject or None,
            "state": self.state or None,
            "text": self.text,
            "repeats": self.repeats,
            "last_repeat_at": _time(self.last_repeat_at),
            "from_log": self.from_log,
        }


@dataclass(frozen=True, slots=True)
class Factor:
    """A candidate contributing factor: a fact phrased as a condition of the system, the
    first "why" to ask about it, and the timeline row it comes from."""

    kind: FactorKind
    statement: str
    why: str
    row: int
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "statement": self.statement,
            "whys": [self.why, None, None, None, None],
            "cites": {"row": self.row, "at": format_time(self.at)},
        }


@dataclass(frozen=True, slots=True)
class DraftActionItem:
    title: str
    owner: str | None
    due_date: date | None
    status: Literal["open", "done"]
    origin: ItemOrigin
    flags: tuple[str, ...] = ()
    reason: str = ""  # why a suggestion is made
    item_id: str | None = None
    ticket_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.item_id,
            "title": self.title,
            "owner": self.owner,
            "due_date": None if self.due_date is None else self.due_date.isoformat(),
            "status": self.status,
            "origin": self.origin,
            "reason": self.reason or None,
            "ticket_url": self.ticket_url,
            "flags": list(self.flags),
        }


@dataclass(frozen=True, slots=True)
class DetectionAnalysis:
    detected_by: DetectedBy
    started_at: datetime
    detected_at: datetime | None
    latency_seconds: float | None
    latency: str | None  # human readable
    verdict: Verdict
    verdict_text: str
    first_detector: str | None
    first_detector_text: str
    fired_last: str | None
    fired_last_text: str

    def to_json(self) -> dict[str, Any]:
        return {
            "detected_by": self.detected_by,
            "started_at": format_time(self.started_at),
            "detected_at": _time(self.detected_at),
            "latency_seconds": self.latency_seconds,
            "latency": self.latency,
            "verdict": self.verdict,
            "verdict_text": self.verdict_text,
            "first_detector": self.first_detector,
            "first_detector_text": self.first_detector_text,
            "fired_last": self.fired_last,
            "fired_last_text": self.fired_last_text,
        }


@dataclass(frozen=True, slots=True)
class ReviewCadence:
    engineering_by: datetime | None  # resolved_at + 24 h; None while open
    stakeholders_by: datetime | None  # resolved_at + 48 h
    public_summary_due: bool  # the status page shows it (public.is_published)
    users_saw: bool = False  # incident.public: P1/P2, a public uptime check, or marked

    def to_json(self) -> dict[str, Any]:
        return {
            "engineering_by": _time(self.engineering_by),
            "stakeholders_by": _time(self.stakeholders_by),
            "public_summary_due": self.public_summary_due,
        }


@dataclass(frozen=True, slots=True)
class Draft:
    incident: Incident
    draft_date: date
    preamble: str
    summary: tuple[str, str, str]
    timeline: tuple[TimelineRow, ...]
    factors: tuple[Factor, ...]
    action_items: tuple[DraftActionItem, ...]
    detection: DetectionAnalysis
    review: ReviewCadence
    public_summary: str

    def to_json(self) -> dict[str, Any]:
        """The same content as JSON sections, in the Markdown's order."""
        incident = self.incident
        contents: dict[str, dict[str, Any]] = {
            "summary": {"editable": True, "sentences": list(self.summary)},
            "timeline": {"rows": [row.to_json() for row in self.timeline]},
            "contributing_factors": {
                "method": "5 Whys",
                "candidates": [factor.to_json() for factor in self.factors],
            },
            "action_items": {"items": [item.to_json() for item in self.action_items]},
            "detection": self.detection.to_json(),
            "review_cadence": self.review.to_json(),
            "public_summary": {"text": self.public_summary,
                               "published": self.review.public_summary_due},
        }
        return {
            "incident": {
                "id": incident.id,
                "title": incident.title,
                "service": incident.service,
                "severity": incident.severity,
                "status": incident.status,
                "started_at": format_time(incident.started_at),
                "detected_at": _time(incident.detected_at),
                "acknowledged_at": _time(incident.acknowledged_at),
                "resolved_at": _time(incident.resolved_at),
                "detection_latency_seconds": incident.detection_latency_seconds,
                "duration_seconds": incident.duration_seconds,
                "detected_by": incident.detected_by,
                "detection_verdict": incident.detection_verdict,
            },
            "draft_date": self.draft_date.isoformat(),
            "preamble": self.preamble,
            "sections": [
                {"id": key, "number": number, "title": title, **contents[key]}
                for number, (key, title) in enumerate(SECTION_TITLES, start=1)
            ],
        }

