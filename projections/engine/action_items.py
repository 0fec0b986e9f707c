"""Action items: a pure fold of the action-item events, and the weekly review view.

TIMELINE.md asks for items that are specific, assigned and time-bounded. The fold keeps
each item's facts and flags what falls short, with the reason in plain words, so the
draft, the API and ``hindsight review`` all say the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, assert_type

from ingest.action_items import (
    UNNAMED_TARGET,
    ActionItemAdded,
    ActionItemAssigned,
    ActionItemCompleted,
    ActionItemDueDateSet,
    ActionItemEvent,
    ActionItemNotificationAttempted,
    ActionItemTicketLinked,
    NotificationReason,
)
from ingest.signals import format_time

ItemStatus = Literal["open", "done"]

MAX_DUE_DAYS = 14  # "time-bounded": the postmortem guidance allows at most two weeks

# Phrasings that describe an intention, not a change anyone can finish. Matched as whole
# phrases, case-insensitively ("investigated the cause" is a fact, not a match).
VAGUE_PHRASES: tuple[str, ...] = (
    "improve monitoring",
    "better monitoring",
    "more monitoring",
    "monitor better",
    "improve alerting",
    "better alerting",
    "improve testing",
    "more testing",
    "be more careful",
    "be careful",
    "be more vigilant",
    "pay more attention",
    "investigate",
    "look into",
    "fix the issue",
    "fix the problem",
    "fix the bug",
    "fix it",
    "keep an eye on",
)
_VAGUE = tuple(
    (
        phrase,
        re.compile(r"(?<![\w-])" + r"\s+".join(map(re.escape, phrase.split())) + r"(?![\w-])",
                   re.IGNORECASE),
    )
    for phrase in VAGUE_PHRASES
)

# Words that carry no object: an item made only of these ("Add monitoring", "Fix things")
# names nothing concrete to change. Anything else (a check, a job, a host, a runbook)
# counts as concrete, so the test errs towards not flagging.
_EMPTY_WORDS = frozenset(
    # One string split into words reads better here than 90 quoted ones.
    """
    a an the this that these those it its our we all any some more better less every
    to of for on in at by with and or into about up out as be is are was were
    add improve fix make do did check review update ensure monitor monitoring alerting
    alert alerts test tests testing tooling process processes documentation docs
    thing things stuff issue issues problem problems bug bugs system systems everything
    code quality reliability stability performance again future next time
    """.split()  # noqa: SIM905
)
_WORD = re.compile(r"[\w][\w./:-]*")


@dataclass(frozen=True, slots=True)
class NotificationAttempt:
    target: str  # the target's configured name, never its URL
    attempt: int
    reason: NotificationReason
    status_code: int | None
    error: str | None
    at: datetime
    position: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class ActionItem:
    id: str
    incident_id: str
    title: str
    owner: str | None
    due_date: date | None
    ticket_url: str | None
    status: ItemStatus
    created_at: datetime
    completed_at: datetime | None = None
    flags: tuple[str, ...] = ()
    position: int = 0  # of the ``added`` event: a stable tie-breaker
    notifications: tuple[NotificationAttempt, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "incident_id": self.incident_id,
            "title": self.title,
            "owner": self.owner,
            "due_date": None if self.due_date is None else self.due_date.isoformat(),
            "ticket_url": self.ticket_url,
            "status": self.status,
            "created_at": format_time(self.created_at),
            "completed_at": None if self.completed_at is None else format_time(self.completed_at),
            "flags": list(self.flags),
            "position": self.position,
            "notifications": [
                {"target": n.target, "attempt": n.attempt, "reason": n.reason,
                 "status_code": n.status_code, "error": n.error, "at": format_time(n.at),
                 "position": n.position}
                for n in self.notifications
            ],
        }


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def item_from_json(data: Mapping[str, Any]) -> ActionItem:
    """The inverse of ``ActionItem.to_json`` (the read model stores that JSON)."""
    created = _time(data["created_at"])
    assert created is not None
    return ActionItem(
        id=data["id"],
        incident_id=data["incident_id"],
        title=data["title"],
        owner=data.get("owner"),
        due_date=None if data.get("due_date") is None else date.fromisoformat(data["due_date"]),
        ticket_url=data.get("ticket_url"),
        status=data["status"],
        created_at=created,
        completed_at=_time(data.get("completed_at")),
        flags=tuple(data.get("flags", ())),
        position=int(data.get("position", 0)),
        notifications=tuple(
            NotificationAttempt(target=n.get("target", UNNAMED_TARGET), attempt=n["attempt"],
                                reason=n["reason"],
                                status_code=n.get("status_code"), error=n.get("error"),
                                at=_time(n["at"]) or created, position=n["position"])
            for n in data.get("notifications", ())
        ),
    )


@dataclass(frozen=True, slots=True)
class RecordedItemEvent:
    """An action-item event as the log holds it."""

    position: int
    recorded_at: datetime
    event: ActionItemEvent


def vague_reason(title: str) -> str | None:
    """Why ``title`` is not an action item, or None when it names a concrete change."""
    for phrase, pattern in _VAGUE:
        if pattern.search(title):
            return f"vague: '{phrase}' is not an action item"
    words = [w.strip(".:/-").lower() for w in _WORD.findall(title)]
    if not [w for w in words if w and w not in _EMPTY_WORDS]:
        return "vague: it names nothing concrete to change"
    return None


def item_flags(
    title: str,
    owner: str | None,
    due_date: date | None,
    *,
    status: ItemStatus,
    reference: date,
    reference_name: str = "creation",
) -> tuple[str, ...]:
    """The reasons an item falls short, in a fixed order.

    Owner and due date matter only while the item is open: a finished item needs
    neither. ``reference`` is the date the 14-day bound counts from (the item's creation
    in the fold, the draft date in a draft), named in the message.
    """
    flags: list[str] = []
    if status == "open":
        if not owner:
            flags.append("no owner")
        if due_date is None:
            flags.append("no due date")
        elif due_date > reference + timedelta(days=MAX_DUE_DAYS):
            flags.append(f"due more than {MAX_DUE_DAYS} days after {reference_name}")
    vague = vague_reason(title)
    if vague is not None:
        flags.append(vague)
    return tuple(flags)


def _reflag(item: ActionItem) -> ActionItem:
    flags = item_flags(
        item.title,
        item.owner,
        item.due_date,
        status=item.status,
        reference=item.created_at.astimezone(UTC).date(),
    )
    return replace(item, flags=flags)


def apply(item: ActionItem | None, recorded: RecordedItemEvent) -> ActionItem | None:
    """The item after one event (``item`` is None before its ``added`` event).

    Events for an unknown item are ignored, and so is a second ``added`` for a known id
    (the first wins): a fold must not fail on history it cannot change.
    """
    event = recorded.event
    if isinstance(event, ActionItemAdded):
        if item is not None:
            return item
        return _reflag(
            ActionItem(
                id=event.item_id,
                incident_id=event.incident_id,
                title=event.title,
                owner=event.owner,
                due_date=event.due_date,
                ticket_url=event.ticket_url,
                status="open",
                created_at=recorded.recorded_at.astimezone(UTC),
                position=recorded.position,
            )
        )
    if item is None:
        return None
    if isinstance(event, ActionItemAssigned):
        return _reflag(replace(item, owner=event.owner))
    if isinstance(event, ActionItemDueDateSet):
        return _reflag(replace(item, due_date=event.due_date))
    if isinstance(event, ActionItemTicketLinked):
        return replace(item, ticket_url=event.url)
    if isinstance(event, ActionItemCompleted):
        if item.status == "done":
            return item
        done_at = event.completed_at or recorded.recorded_at.astimezone(UTC)
        return _reflag(replace(item, status="done", completed_at=done_at))
    # The last member of the union; mypy proves no other type gets here.
    assert_type(event, ActionItemNotificationAttempted)
    attempt = NotificationAttempt(
        target=event.target,
        attempt=event.attempt,
        reason=event.reason,
        status_code=event.status_code,
        error=event.error,
        at=recorded.recorded_at.astimezone(UTC),
        position=recorded.position,
    )
    return replace(item, notifications=(*item.notifications, attempt))


def fold(
    events: Iterable[RecordedItemEvent], items: Mapping[str, ActionItem] | None = None
) -> dict[str, ActionItem]:
    """Items by id after ``events`` (in log order), starting from ``items``."""
    state = dict(items or {})
    for recorded in events:
        item_id = recorded.event.item_id
        after = apply(state.get(item_id), recorded)
        if after is not None:
            state[item_id] = after
    return state


def review_order(item: ActionItem) -> tuple[bool, date, datetime, int, str]:
    """Soonest due first, items without a due date last; then oldest first."""
    return (item.due_date is None, item.due_date or date.max, item.created_at,
            item.position, item.id)


@dataclass(frozen=True, slots=True)
class Review:
    """The weekly review: open items, and the three lists that need someone's attention."""

    today: date
    open: tuple[ActionItem, ...]
    overdue: tuple[ActionItem, ...]
    unassigned: tuple[ActionItem, ...]
    due_beyond_14_days: tuple[ActionItem, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "open": [item.to_json() for item in self.open],
            "overdue": [item.to_json() for item in self.overdue],
            "unassigned": [item.to_json() for item in self.unassigned],
            "due_beyond_14_days": [item.to_json() for item in self.due_beyond_14_days],
        }


def weekly_review(items: Iterable[ActionItem], today: date) -> Review:
    """Open items; of those, overdue (due before ``today``), unassigned, and due more
    than 14 days after ``today``. Each list ordered by ``review_order``."""
    open_items = tuple(sorted((i for i in items if i.status == "open"), key=review_order))
    horizon = today + timedelta(days=MAX_DUE_DAYS)
    return Review(
        today=today,
        open=open_items,
        overdue=tuple(i for i in open_items if i.due_date is not None and i.due_date < today),
        unassigned=tuple(i for i in open_items if not i.owner),
        due_beyond_14_days=tuple(
            i for i in open_items if i.due_date is not None and i.due_date > horizon
        ),
    )
