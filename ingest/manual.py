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
from typing import Annotated, Any, Literal, get_args

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
    incident_id: IncidentId = Field(description="the incident's id (letters, digits, _ . : -)")
    service: Name = Field(description="the service users experience as one thing")
    title: Name = Field(description="one line: what is wrong")
    severity: Severity | None = Field(None, description="P1 (highest) to P4; default: "
                                                        "what the signals imply")
    # the user-reported start, if known
    started_at: UtcTime | None = Field(None, description="when impact began, if known "
                                                         "(default: the declaration)")
    summary: OptionalText = Field("", description="what was reported, in a few sentences")


class IncidentNote(_Manual):
    """A key action, at its own time (not the time it was written down)."""

    type: Literal["incident.note"] = "incident.note"
    at: UtcTime = Field(description="when the action happened")
    text: Text = Field(description="what was done or seen")


class IncidentSeveritySet(_Manual):
    type: Literal["incident.severity_set"] = "incident.severity_set"
    severity: Severity = Field(description="P1 (highest) to P4")
    reason: OptionalText = Field("", description="why")


class IncidentImpactStartCorrected(_Manual):
    """``started_at`` overridden, with the evidence (e.g. the first 5xx in the logs)."""

    type: Literal["incident.impact_start_corrected"] = "incident.impact_start_corrected"
    started_at: UtcTime = Field(description="when impact really began")
    evidence: Text = Field(description="how we know (e.g. the first 5xx in the logs)")


class IncidentAcknowledged(_Manual):
    type: Literal["incident.acknowledged"] = "incident.acknowledged"
    at: UtcTime = Field(description="when someone took it on")


class IncidentResolved(_Manual):
    type: Literal["incident.resolved"] = "incident.resolved"
    resolved_at: UtcTime = Field(description="when impact ended")
    text: OptionalText = Field("", description="how it ended")


class IncidentMerged(_Manual):
    """Merge ``other_id`` with the incident this is posted to.

    The engine keeps the older of the two (TIMELINE.md: the older id survives),
    whichever was named here.
    """

    type: Literal["incident.merged"] = "incident.merged"
    other_id: IncidentId = Field(description="the other incident's id")


class IncidentPublicitySet(_Manual):
    """Whether users saw it (status page), overriding what severity and checks imply."""

    type: Literal["incident.publicity_set"] = "incident.publicity_set"
    public: bool = Field(description="true: users saw it (listed on /status)")


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


# --- HTTP request bodies ---------------------------------------------------------------
# What a client POSTs: each event's fields, ``type`` naming it by its full name or its
# short alias. The stored event is the model they derive from, so the fields, their
# checks and their descriptions exist once; /openapi.json is generated from these.


class DeclareBody(IncidentDeclared):
    """POST /v1/incidents. Without ``incident_id``, the server picks ``inc_`` + 16 hex."""

    incident_id: IncidentId | None = Field(  # type: ignore[assignment]  # optional here
        None, description="your own id (default: the server picks inc_<16 hex>)")


# For mypy, each body widens its event's ``type`` literal by the alias (a deliberate override
# that pydantic supports: the discriminator accepts both spellings).
class NoteBody(IncidentNote):
    """A key action on the timeline at its own time."""

    type: Literal["incident.note", "note"]  # type: ignore[assignment]


class SeverityBody(IncidentSeveritySet):
    """The engineer's severity: wins over what the signals imply."""

    type: Literal["incident.severity_set", "severity"]  # type: ignore[assignment]


class ImpactStartBody(IncidentImpactStartCorrected):
    """``started_at`` corrected, with the evidence."""

    type: Literal["incident.impact_start_corrected",  # type: ignore[assignment]
                  "impact_start"]


class AcknowledgeBody(IncidentAcknowledged):
    """Someone took the incident on."""

    type: Literal["incident.acknowledged", "acknowledge"]  # type: ignore[assignment]


class ResolveBody(IncidentResolved):
    """Resolved by hand: wins over signals still failing (until a later failure)."""

    type: Literal["incident.resolved", "resolve"]  # type: ignore[assignment]


class MergeBody(IncidentMerged):
    """Merge another incident with this one; the older id survives."""

    type: Literal["incident.merged", "merge"]  # type: ignore[assignment]


class PublicBody(IncidentPublicitySet):
    """Whether users saw it (the status page lists it), overriding the default."""

    type: Literal["incident.publicity_set", "public"]  # type: ignore[assignment]


EventBody = Annotated[
    NoteBody | SeverityBody | ImpactStartBody | AcknowledgeBody | ResolveBody | MergeBody
    | PublicBody,
    Field(discriminator="type"),
]
EVENT_BODIES: tuple[type[_Manual], ...] = (
    NoteBody, SeverityBody, ImpactStartBody, AcknowledgeBody, ResolveBody, MergeBody,
    PublicBody)
# Short name -> event type, read off the bodies' literals (note -> incident.note).
EVENT_ALIASES: dict[str, str] = {
    get_args(body.model_fields["type"].annotation)[1]:
        get_args(body.model_fields["type"].annotation)[0]
    for body in EVENT_BODIES}
EVENT_BODY: TypeAdapter[EventBody] = TypeAdapter(EventBody)


def parse_event_body(data: Any) -> ManualEvent:
    """The manual event a POST /v1/incidents/{id}/events body describes, or ValueError
    naming the first bad field (``resolved_at: Input should have timezone info``)."""
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    kind = data.get("type")
    if kind == "incident.declared" or kind == "declare":
        raise ValueError("type: declare with POST /v1/incidents")
    if not isinstance(kind, str) or EVENT_ALIASES.get(kind, kind) not in MANUAL_TYPES:
        raise ValueError(f"type: one of {', '.join(EVENT_ALIASES)} (or their full names), "
                         f"not {str(kind)[:60]!r}")
    try:
        body = EVENT_BODY.validate_python(data)
    except ValidationError as exc:
        # Only the union's tag (the first location part) is dropped: ``severity`` and
        # ``public`` are both a tag and a field name.
        raise ValueError(first_problem(exc).removeprefix(f"{kind}.")) from None
    return _ADAPTER.validate_python({**body.model_dump(exclude={"type"}),
                                     "type": EVENT_ALIASES.get(kind, kind)})


def parse_declare_body(data: Any, default_id: str) -> IncidentDeclared:
    """The declaration a POST /v1/incidents body describes (``default_id`` when it names
    none), or ValueError naming the first bad field."""
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    try:
        body = DeclareBody.model_validate(data)
    except ValidationError as exc:
        raise ValueError(first_problem(exc)) from None
    return IncidentDeclared.model_validate(
        {**body.model_dump(exclude={"type"}), "incident_id": body.incident_id or default_id})
