"""Manual events: what an engineer tells us about an incident (TIMELINE.md rule 10).

Each is a frozen value with a ``type`` literal. The HTTP layer validates a request with
``manual_event_from_json`` and appends ``manual_event_to_json(event)`` to the stream
``incident-<id>``; the projector reads it back with the same function, so what was
accepted once is read the same way in every rebuild. Manual events win over what the
signals imply.

Times must carry a zone (a time without one is ambiguous, and the timeline is exact to
the second); they are normalised to UTC so that every rebuild prints them identically.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from ingest.signals import Severity
from ingest.validation import first_problem


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcTime = Annotated[AwareDatetime, AfterValidator(_utc)]
# Incident ids end up in stream names (incident-<id>) and URLs: keep them plain.
IncidentId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=10_000)]


class _Manual(BaseModel):
    # extra="forbid": a misspelt field is an error at the edge, not silently dropped
    # from an immutable log.
    model_config = ConfigDict(frozen=True, extra="forbid")


class IncidentDeclared(_Manual):
    """An engineer opens an incident by hand (e.g. an outage a user reported)."""

    type: Literal["incident.declared"] = "incident.declared"
    incident_id: IncidentId
    service: Name
    title: Name
    severity: Severity | None = None
    started_at: UtcTime | None = None  # the user-reported start, if known
    summary: OptionalText = ""


class IncidentNote(_Manual):
    """A key action, at its own time (not the time it was written down)."""

    type: Literal["incident.note"] = "incident.note"
    at: UtcTime
    text: Text


class IncidentSeveritySet(_Manual):
    type: Literal["incident.severity_set"] = "incident.severity_set"
    severity: Severity
    reason: OptionalText = ""


class IncidentImpactStartCorrected(_Manual):
    """``started_at`` overridden, with the evidence (e.g. the first 5xx in the logs)."""

    type: Literal["incident.impact_start_corrected"] = "incident.impact_start_corrected"
    started_at: UtcTime
    evidence: Text


class IncidentAcknowledged(_Manual):
    type: Literal["incident.acknowledged"] = "incident.acknowledged"
    at: UtcTime


class IncidentResolved(_Manual):
    type: Literal["incident.resolved"] = "incident.resolved"
    resolved_at: UtcTime
    text: OptionalText = ""


class IncidentMerged(_Manual):
    """Merge ``other_id`` with the incident this is posted to.

    The engine keeps the older of the two (TIMELINE.md: the older id survives),
    whichever was named here.
    """

    type: Literal["incident.merged"] = "incident.merged"
    other_id: IncidentId


class IncidentPublicitySet(_Manual):
    """Whether users saw it (status page), overriding what severity and checks imply."""

    type: Literal["incident.publicity_set"] = "incident.publicity_set"
    public: bool


ManualEvent = Annotated[
    IncidentDeclared
    | IncidentNote
    | IncidentSeveritySet
    | IncidentImpactStartCorrected
    | IncidentAcknowledged
    | IncidentResolved
    | IncidentMerged
    | IncidentPublicitySet,
    Field(discriminator="type"),
]

MANUAL_TYPES: tuple[str, ...] = (
    "incident.declared",
    "incident.note",
    "incident.severity_set",
    "incident.impact_start_corrected",
    "incident.acknowledged",
    "incident.resolved",
    "incident.merged",
    "incident.publicity_set",
)

_ADAPTER: TypeAdapter[ManualEvent] = TypeAdapter(ManualEvent)


def manual_event_from_json(type: str, data: dict[str, Any]) -> ManualEvent:
    """The event of this ``type`` from its JSON ``data`` (a ``type`` key in data, if any,
    must agree). Raises ValueError with a short message naming the first bad field."""
    if type not in MANUAL_TYPES:
        raise ValueError(f"unknown manual event type: {type[:60]!r}")
    if not isinstance(data, dict):
        raise ValueError("event data must be an object")
    if data.get("type", type) != type:
        raise ValueError("type: does not match the event type")
    try:
        return _ADAPTER.validate_python({**data, "type": type})
    except ValidationError as exc:
        raise ValueError(first_problem(exc, tag=type)) from None


def manual_event_to_json(event: ManualEvent) -> dict[str, Any]:
    """The event's data as JSON values, without ``type`` (stored beside it); the inverse
    of ``manual_event_from_json``."""
    out = event.model_dump(mode="json")
    del out["type"]
    return out
