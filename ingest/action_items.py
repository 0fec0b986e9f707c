"""Action-item events: follow-up work engineers record for an incident (TIMELINE.md).

Each event is a frozen value with a ``type`` literal. The HTTP layer validates a request
with ``parse_action_item_event`` and appends the event; the log gives it a position and
``recorded_at``. The projection (``projections/engine/action_items.py``) folds them into items.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from ingest.validation import first_problem

NotificationReason = Literal["created", "overdue"]


def _http_url(value: str) -> str:
    # Kept as given (pydantic's URL type would normalise it, and the stored event must
    # say exactly what the engineer sent); only the shape is checked.
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an http(s) URL")
    return value


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


Text = Annotated[str, Field(min_length=1, max_length=500)]
Id = Annotated[str, Field(min_length=1, max_length=200)]
Url = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_http_url)]
UtcTime = Annotated[AwareDatetime, AfterValidator(_utc)]


class _Event(BaseModel):
    # extra="forbid": a misspelt field ("owner_name") is an error at the edge, not a
    # silently dropped value in an immutable log.
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class ActionItemAdded(_Event):
    type: Literal["action_item.added"] = "action_item.added"
    item_id: Id
    incident_id: Id
    title: Text
    owner: Text | None = None
    due_date: date | None = None
    ticket_url: Url | None = None


class ActionItemAssigned(_Event):
    type: Literal["action_item.assigned"] = "action_item.assigned"
    item_id: Id
    owner: Text


class ActionItemDueDateSet(_Event):
    type: Literal["action_item.due_date_set"] = "action_item.due_date_set"
    item_id: Id
    due_date: date


class ActionItemTicketLinked(_Event):
    type: Literal["action_item.ticket_linked"] = "action_item.ticket_linked"
    item_id: Id
    url: Url


class ActionItemCompleted(_Event):
    type: Literal["action_item.completed"] = "action_item.completed"
    item_id: Id
    completed_at: UtcTime | None = None


# A notification target's configured name ([notify.targets]): never a URL (no ':' or '/').
TargetName = Annotated[str, Field(min_length=1, max_length=63,
                                  pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
# Attempts recorded before targets had names held the target's URL itself. Read back,
# they name no target: the URL (often a credential) goes no further than the old event.
UNNAMED_TARGET = "unnamed"


class ActionItemNotificationAttempted(_Event):
    """One outbound POST about an item (created, or fallen overdue), whatever its outcome.

    It names the target as configured, never its URL: the log is append-only and read
    by every projection, and a chat webhook's URL is a credential (issue 12, item 13).
    """

    type: Literal["action_item.notification_attempted"] = "action_item.notification_attempted"
    item_id: Id
    target: TargetName
    attempt: Annotated[int, Field(ge=1)]
    status_code: Annotated[int, Field(ge=100, le=599)] | None = None
    error: Annotated[str, Field(max_length=500)] | None = None
    reason: NotificationReason

    @model_validator(mode="before")
    @classmethod
    def _recorded_with_a_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and "url" in data and "target" not in data:
            data = {k: v for k, v in data.items() if k != "url"}
            data["target"] = UNNAMED_TARGET
        return data


ActionItemEvent = Annotated[
    ActionItemAdded
    | ActionItemAssigned
    | ActionItemDueDateSet
    | ActionItemTicketLinked
    | ActionItemCompleted
    | ActionItemNotificationAttempted,
    Field(discriminator="type"),
]

ACTION_ITEM_EVENT_TYPES: tuple[str, ...] = (
    "action_item.added",
    "action_item.assigned",
    "action_item.due_date_set",
    "action_item.ticket_linked",
    "action_item.completed",
    "action_item.notification_attempted",
)

_ADAPTER: TypeAdapter[ActionItemEvent] = TypeAdapter(ActionItemEvent)


def parse_action_item_event(data: Mapping[str, Any]) -> ActionItemEvent:
    """The event ``data`` describes, or ValueError with the first problem in a short,
    stable message (``due_date: Input should be a valid date ...``)."""
    if not isinstance(data, Mapping):
        raise ValueError("expected an object")
    kind = data.get("type")
    if kind not in ACTION_ITEM_EVENT_TYPES:
        raise ValueError(f"type: unknown action-item event {str(kind)[:60]!r}")
    try:
        return _ADAPTER.validate_python(dict(data))
    except ValidationError as exc:
        raise ValueError(first_problem(exc, tag=kind)) from None


# --- HTTP request bodies ---------------------------------------------------------------
# What a client POSTs. The server supplies ``item_id`` and ``incident_id`` (from the
# path); the fields and their checks are the events' own types (``Text``, ``Url``, ...),
# and /openapi.json is generated from these models.


class AddItemBody(_Event):
    """POST /v1/incidents/{id}/action-items: the server picks the item id (ai_…)."""

    title: Text = Field(description="specific and verifiable: what will be done")
    owner: Text | None = Field(None, description="a role or team (never blame a person)")
    due_date: date | None = Field(None, description="YYYY-MM-DD")
    ticket_url: Url | None = Field(None, description="the tracker's http(s) URL")


class AssignBody(_Event):
    type: Literal["action_item.assigned", "assign"]
    owner: Text = Field(description="a role or team")


class DueDateBody(_Event):
    type: Literal["action_item.due_date_set", "due_date"]
    due_date: date = Field(description="YYYY-MM-DD")


class TicketBody(_Event):
    type: Literal["action_item.ticket_linked", "ticket"]
    url: Url = Field(description="the tracker's http(s) URL")


class CompleteBody(_Event):
    type: Literal["action_item.completed", "complete"]
    completed_at: UtcTime | None = Field(None, description="when it was done (default: "
                                                           "when this was recorded)")


ItemEventBody = Annotated[
    AssignBody | DueDateBody | TicketBody | CompleteBody, Field(discriminator="type")]
ITEM_EVENT_BODIES: tuple[type[_Event], ...] = (AssignBody, DueDateBody, TicketBody,
                                               CompleteBody)
# Short name -> event type, read off the bodies' literals (assign -> action_item.assigned).
ITEM_ALIASES: dict[str, str] = {
    get_args(body.model_fields["type"].annotation)[1]:
        get_args(body.model_fields["type"].annotation)[0]
    for body in ITEM_EVENT_BODIES}
ITEM_EVENT_BODY: TypeAdapter[ItemEventBody] = TypeAdapter(ItemEventBody)


def parse_add_body(data: Any, item_id: str, incident_id: str) -> ActionItemAdded:
    """The item a POST /v1/incidents/{id}/action-items body adds, or ValueError naming
    the first bad field."""
    if not isinstance(data, Mapping):
        raise ValueError("body must be a JSON object")
    try:
        body = AddItemBody.model_validate(dict(data))
    except ValidationError as exc:
        raise ValueError(first_problem(exc)) from None
    return ActionItemAdded(item_id=item_id, incident_id=incident_id, **body.model_dump())


def parse_item_event_body(data: Any, item_id: str) -> ActionItemEvent:
    """The event a POST /v1/action-items/{id}/events body describes, or ValueError
    naming the first bad field."""
    if not isinstance(data, Mapping):
        raise ValueError("body must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in {*ITEM_ALIASES, *ITEM_ALIASES.values()}:
        raise ValueError(f"type: one of {', '.join(ITEM_ALIASES)} (or their full names), "
                         f"not {str(kind)[:60]!r}")
    try:
        body = ITEM_EVENT_BODY.validate_python(dict(data))
    except ValidationError as exc:
        # Only the union's tag (the first location part) is dropped: ``due_date`` is both
        # a tag and a field name.
        raise ValueError(first_problem(exc).removeprefix(f"{kind}.")) from None
    return parse_action_item_event({**body.model_dump(exclude={"type"}), "item_id": item_id,
                                    "type": ITEM_ALIASES.get(kind, kind)})
