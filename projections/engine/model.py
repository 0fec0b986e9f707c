"""What the projections produce: incidents and their timelines (API.md, TIMELINE.md).

These are frozen values; the engine folds the log into them, the read model stores them,
the read API and the postmortem draft render them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ingest.signals import Kind, Severity, State

Marker = Literal["started", "detected", "acknowledged", "resolved", "deploy", "note"]
Status = Literal["open", "resolved"]
DetectedBy = Literal["monitor", "human"]
Verdict = Literal["ok", "gap", "critical"]


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of an incident's timeline, ordered by ``at`` then ``position``.

    ``at`` is the source's own time; ``received_at`` when the delivery (or manual event)
    reached us. ``repeats`` counts identical failing reports folded into this entry
    (Alertmanager's repeat_interval, reminders), the last one at ``last_repeat_at``.
    ``candidate_factor`` marks a deploy before ``started_at`` (TIMELINE.md rule 7).
    """

    at: datetime
    received_at: datetime
    position: int
    marker: Marker | None
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
    links: tuple[tuple[str, str], ...] = ()        # (url, title)
    attributes: tuple[tuple[str, str], ...] = ()   # ref, environment, expires_at, ...
    name: str = ""  # how texts show the subject (an alert by its alertname); "" = subject


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    title: str
    service: str
    severity: Severity
    status: Status
    started_at: datetime
    detected_at: datetime | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    detection_latency_seconds: float | None
    duration_seconds: float | None
    detected_by: DetectedBy
    detection_verdict: Verdict
    version: int                       # manual-event stream version (If-Match)
    first_detector: str | None = None  # subject whose delivery notified first
    late_detector: str | None = None   # subject that failed first but notified last
    public: bool = False               # users saw it: P1/P2, public uptime check, or marked
    # An engineer's latest incident.publicity_set (None: nobody decided). The status page
    # publishes an incident of a service not in [status] public_services only when True.
    marked_public: bool | None = None
    subjects: tuple[str, ...] = ()     # every subject that failed in it
    sources: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    signal_count: int = 0
    merged_into: str | None = None
    timeline: tuple[TimelineEntry, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Risk:
    """A standing risk of a service: a certificate expiring soon, a failed deploy."""

    service: str
    subject: str
    kind: str
    reason: str
    since: datetime
    position: int
