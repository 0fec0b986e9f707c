"""Action-item events, their fold, the flags and the weekly review."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from ingest.action_items import (
    UNNAMED_TARGET,
    ActionItemAdded,
    ActionItemCompleted,
    ActionItemNotificationAttempted,
    parse_action_item_event,
)
from projections.engine.action_items import (
    ActionItem,
    RecordedItemEvent,
    fold,
    item_flags,
    item_from_json,
    vague_reason,
    weekly_review,
)

T0 = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)


def recorded(position: int, data: dict[str, Any], minutes: int = 0) -> RecordedItemEvent:
    return RecordedItemEvent(position=position, recorded_at=T0 + timedelta(minutes=minutes),
                         event=parse_action_item_event(data))


def added(item_id: str = "ai_1", **fields: Any) -> dict[str, Any]:
    return {"type": "action_item.added", "item_id": item_id, "incident_id": "inc_1",
            "title": "Add a cron heartbeat monitor for payment-reconciliation", **fields}


# --- Events -------------------------------------------------------------------------------


def test_it_parses_every_event_type() -> None:
    events = [
        added(owner="payments team", due_date="2026-03-15",
              ticket_url="https://tracker.example.com/PAY-1"),
        {"type": "action_item.assigned", "item_id": "ai_1", "owner": "SRE on-call"},
        {"type": "action_item.due_date_set", "item_id": "ai_1", "due_date": "2026-03-10"},
        {"type": "action_item.ticket_linked", "item_id": "ai_1",
         "url": "https://github.com/acme/ops/issues/7"},
        {"type": "action_item.completed", "item_id": "ai_1",
         "completed_at": "2026-03-09T12:00:00+01:00"},
        {"type": "action_item.notification_attempted", "item_id": "ai_1",
         "target": "ops-chat", "attempt": 2, "status_code": 503,
         "reason": "overdue"},
    ]
    parsed = [parse_action_item_event(e) for e in events]
    assert [p.type for p in parsed] == [e["type"] for e in events]
    first = parsed[0]
    assert isinstance(first, ActionItemAdded)
    assert first.due_date == date(2026, 3, 15)
    completed = parsed[4]
    assert isinstance(completed, ActionItemCompleted)
    assert completed.completed_at == datetime(2026, 3, 9, 11, 0, tzinfo=UTC)
    assert isinstance(parsed[5], ActionItemNotificationAttempted)


def test_events_are_frozen_values() -> None:
    event = parse_action_item_event(added())
    assert isinstance(event, ActionItemAdded)
    with pytest.raises(ValueError, match="frozen"):
        event.title = "x"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "action_item.renamed", "item_id": "ai_1"},
         "type: unknown action-item event 'action_item.renamed'"),
        ({"item_id": "ai_1"}, "type: unknown action-item event 'None'"),
        (added(due_date="next week"), "due_date: Input should be a valid date"),
        (added(ticket_url="ftp://tracker/1"), "ticket_url: Value error, expected an http(s) URL"),
        (added(title=""), "title: String should have at least 1 character"),
        (added(owner_name="x"), "owner_name: Extra inputs are not permitted"),
        ({"type": "action_item.assigned", "item_id": "ai_1"}, "owner: Field required"),
        ({"type": "action_item.completed", "item_id": "ai_1",
          "completed_at": "2026-03-09T12:00:00"}, "completed_at: Input should have timezone info"),
        ({"type": "action_item.notification_attempted", "item_id": "ai_1",
          "target": "ops-chat", "attempt": 1, "reason": "reminder"},
         "reason: Input should be 'created' or 'overdue'"),
    ],
)
def test_it_rejects_an_invalid_event_with_a_short_message(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_action_item_event(data)


def test_it_rejects_what_is_not_an_object() -> None:
    with pytest.raises(ValueError, match="expected an object"):
        parse_action_item_event(["x"])  # type: ignore[arg-type]


# --- Vagueness ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "phrase"),
    [
        ("Improve monitoring", "improve monitoring"),
        ("IMPROVE   MONITORING of checkout", "improve monitoring"),
        ("Engineers should be more careful with deploys", "be more careful"),
        ("Investigate", "investigate"),
        ("Look into the flaky health check", "look into"),
        ("Monitor better", "monitor better"),
        ("Fix the issue", "fix the issue"),
    ],
)
def test_a_vague_phrase_is_flagged_with_the_phrase(title: str, phrase: str) -> None:
    assert vague_reason(title) == f"vague: '{phrase}' is not an action item"


@pytest.mark.parametrize("title", ["Fix it properly", "Add more alerts", "Review things"])
def test_an_item_with_no_concrete_object_is_flagged(title: str) -> None:
    reason = vague_reason(title)
    assert reason is not None
    assert reason.startswith("vague:")


@pytest.mark.parametrize(
    "title",
    [
        "Add a cron heartbeat monitor for payment-reconciliation",
        "Add an uptime check for checkout",
        "Document what was investigated in the search-indexer runbook",  # not "investigate"
        "Rotate the TLS certificate for api.example.com with cert-manager",
        "Alert on OrdersLatencyHigh sooner: shorten its group_wait",
    ],
)
def test_a_concrete_item_is_not_flagged_as_vague(title: str) -> None:
    assert vague_reason(title) is None


def test_the_flags_come_in_a_fixed_order_with_their_reasons() -> None:
    flags = item_flags("Improve monitoring", None, None, status="open", reference=T0.date())
    assert flags == ("no owner", "no due date",
                     "vague: 'improve monitoring' is not an action item")
    late = item_flags("Add an uptime check for checkout", "SRE", date(2026, 3, 16),
                      status="open", reference=date(2026, 3, 1))
    assert late == ("due more than 14 days after creation",)
    on_bound = item_flags("Add an uptime check for checkout", "SRE", date(2026, 3, 15),
                          status="open", reference=date(2026, 3, 1))
    assert on_bound == ()


def test_a_done_item_needs_no_owner_or_due_date_but_stays_vague() -> None:
    assert item_flags("Improve monitoring", None, None, status="done",
                      reference=T0.date()) == ("vague: 'improve monitoring' is not an action item",)


# --- The fold -----------------------------------------------------------------------------


def test_an_added_item_is_open_and_flagged_for_what_it_lacks() -> None:
    items = fold([recorded(10, added())])
    item = items["ai_1"]
    assert item.status == "open"
    assert item.incident_id == "inc_1"
    assert item.created_at == T0
    assert item.position == 10
    assert item.flags == ("no owner", "no due date")


def test_assigning_and_setting_a_due_date_clears_the_flags() -> None:
    items = fold([
        recorded(10, added()),
        recorded(11, {"type": "action_item.assigned", "item_id": "ai_1",
                      "owner": "payments team"}, minutes=5),
        recorded(12, {"type": "action_item.due_date_set", "item_id": "ai_1",
                      "due_date": "2026-03-20"}, minutes=6),
    ])
    item = items["ai_1"]
    assert (item.owner, item.due_date) == ("payments team", date(2026, 3, 20))
    assert item.flags == ("due more than 14 days after creation",)
    moved = fold([recorded(13, {"type": "action_item.due_date_set", "item_id": "ai_1",
                                "due_date": "2026-03-15"})], items)
    assert moved["ai_1"].flags == ()


def test_a_ticket_link_and_completion_are_kept() -> None:
    items = fold([
        recorded(10, added(owner="payments team", due_date="2026-03-05")),
        recorded(11, {"type": "action_item.ticket_linked", "item_id": "ai_1",
                      "url": "https://tracker.example.com/PAY-9"}),
        recorded(12, {"type": "action_item.completed", "item_id": "ai_1"}, minutes=90),
        recorded(13, {"type": "action_item.completed", "item_id": "ai_1"}, minutes=120),
    ])
    item = items["ai_1"]
    assert item.ticket_url == "https://tracker.example.com/PAY-9"
    assert item.status == "done"
    assert item.completed_at == T0 + timedelta(minutes=90)  # the first completion counts


def test_events_for_an_unknown_item_and_a_second_added_are_ignored() -> None:
    items = fold([
        recorded(9, {"type": "action_item.assigned", "item_id": "ai_9", "owner": "SRE"}),
        recorded(10, added(owner="payments team")),
        recorded(11, added(title="Improve monitoring")),
    ])
    assert list(items) == ["ai_1"]
    assert items["ai_1"].title == "Add a cron heartbeat monitor for payment-reconciliation"


def test_notification_attempts_are_recorded_in_order() -> None:
    attempt = {"type": "action_item.notification_attempted", "item_id": "ai_1",
               "target": "ops-chat", "reason": "created"}
    items = fold([
        recorded(10, added()),
        recorded(11, {**attempt, "attempt": 1, "error": "connection refused"}, minutes=1),
        recorded(12, {**attempt, "attempt": 2, "status_code": 204}, minutes=2),
    ])
    notes = items["ai_1"].notifications
    assert [(n.attempt, n.delivered) for n in notes] == [(1, False), (2, True)]
    assert notes[0].error == "connection refused"


def test_a_notification_target_is_a_name_never_a_url() -> None:
    """Issue 12, item 13: the log names the target; a URL (a credential, for a chat
    webhook) cannot be recorded as one, and an attempt recorded with a URL by an earlier
    version reads back without it."""
    attempt = {"type": "action_item.notification_attempted", "item_id": "ai_1",
               "attempt": 1, "reason": "created"}
    with pytest.raises(ValueError, match=r"^target: String should match pattern"):
        parse_action_item_event({**attempt, "target": "https://hooks.example.com/x?k=1"})
    old = parse_action_item_event({**attempt, "url": "https://hooks.example.com/x?k=1"})
    assert isinstance(old, ActionItemNotificationAttempted)
    assert old.target == UNNAMED_TARGET
    assert "hooks.example.com" not in old.model_dump_json()


def test_the_fold_is_the_same_in_one_pass_or_in_two() -> None:
    events = [
        recorded(10, added()),
        recorded(11, {"type": "action_item.assigned", "item_id": "ai_1", "owner": "SRE"}),
        recorded(12, added("ai_2", title="Improve monitoring")),
    ]
    assert fold(events) == fold(events[1:], fold(events[:1]))


def test_an_item_as_json_has_rfc3339_times_and_a_list_of_flags() -> None:
    item = fold([recorded(10, added())])["ai_1"]
    assert item.to_json() == {
        "id": "ai_1", "incident_id": "inc_1",
        "title": "Add a cron heartbeat monitor for payment-reconciliation",
        "owner": None, "due_date": None, "ticket_url": None, "status": "open",
        "created_at": "2026-03-01T11:00:00Z", "completed_at": None,
        "flags": ["no owner", "no due date"], "position": 10, "notifications": [],
    }
    assert item_from_json(item.to_json()) == item


# --- The weekly review --------------------------------------------------------------------


def _item(item_id: str, *, owner: str | None = "SRE", due: date | None = None,
          status: str = "open", minutes: int = 0) -> ActionItem:
    return ActionItem(id=item_id, incident_id="inc_1", title=f"Concrete item {item_id}",
                      owner=owner, due_date=due, ticket_url=None, status=status,  # type: ignore[arg-type]
                      created_at=T0 + timedelta(minutes=minutes))


def test_the_weekly_review_puts_each_open_item_in_its_buckets() -> None:
    today = date(2026, 3, 10)
    items = [
        _item("done", due=date(2026, 3, 1), status="done"),
        _item("overdue", due=date(2026, 3, 9)),
        _item("due-today", due=today),
        _item("unassigned", owner=None, due=date(2026, 3, 12)),
        _item("far", due=date(2026, 3, 25)),
        _item("on-bound", due=date(2026, 3, 24)),
        _item("no-date", minutes=1),
        _item("no-date-older"),
    ]
    review = weekly_review(items, today)
    assert [i.id for i in review.open] == [
        "overdue", "due-today", "unassigned", "on-bound", "far", "no-date-older", "no-date",
    ]
    assert [i.id for i in review.overdue] == ["overdue"]
    assert [i.id for i in review.unassigned] == ["unassigned"]
    assert [i.id for i in review.due_beyond_14_days] == ["far"]


def test_the_weekly_review_does_not_depend_on_input_order() -> None:
    items = [_item(str(n), due=date(2026, 3, 1 + n % 5), minutes=n) for n in range(12)]
    today = date(2026, 3, 3)
    assert weekly_review(items, today) == weekly_review(list(reversed(items)), today)
    assert weekly_review(items, today).to_json()["today"] == "2026-03-03"
