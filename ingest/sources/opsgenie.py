"""Opsgenie: the outgoing Webhook integration's alert actions.

Documented at https://docs.opsgenie.com/docs/webhook-integration ("Webhook data includes
the alert activity (create, acknowledge, etc.) as well as a subset of the alert fields
(alertId, username, alias, entity, userId)"; "users define custom headers to add the
webhook call") with the alert action data of
https://docs.opsgenie.com/docs/alert-action-data (its "Create", "Acknowledge",
"Close"... samples): ``{"action", "alert": {"alertId", "message", "alias", "tinyId",
"entity", "tags", "createdAt", "updatedAt", "username", "userId", "source", ...},
"source": {"name", "type"}, "integrationId", "integrationName"}``.

Times: ``createdAt`` is epoch milliseconds (``1420452191104``) while the samples'
``updatedAt`` is epoch nanoseconds (``1420452193166002000``); both are read by their
magnitude (seconds, ms, µs or ns), so either unit gives the same instant.

Mapping (kind ``alert``, subject the alert's ``alias``, Opsgenie's de-duplication key
that every action on the alert repeats, else its ``alertId``):

- ``Create`` → ``failing`` (action ``triggered``) at ``createdAt``;
- ``Acknowledge`` → ``info``, action ``acknowledged``, at ``updatedAt`` (the
  acknowledgement's own time: the incident's ``acknowledged_at``, TIMELINE.md);
- ``Close`` → ``ok`` at ``updatedAt``, carrying ``createdAt`` as its start (a failing
  period seen after the fact when the creation was never heard, rule 4);
- everything else (UnAcknowledge, AddNote, AssignOwnership, TakeOwnership, AddTags,
  Escalate, Snooze, Delete, CustomAction, ...) → no signal.

Service: a ``service:`` tag. Severity: ``alert.priority`` when present (P1–P5, P5 →
P4). There is no send time: notified when received. ``username``, ``userId``,
``alert.source`` (often an e-mail address), ``recipients`` and notes name people and are
never read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.delivery import Delivery, MappingError
from ingest.signals import Signal, State, TimeSource, format_time
from ingest.sources._common import clip, no_people, optional, require, severity_from, tag_pairs

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

SOURCE = "opsgenie"
_ACTIONS: dict[str, tuple[State, str, str]] = {
    "create": ("failing", "triggered", "createdAt"),
    "acknowledge": ("info", "acknowledged", "updatedAt"),
    "close": ("ok", "resolved", "updatedAt"),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json()
    action = require(body, "action", str).strip()
    if action.lower() not in _ACTIONS:
        return []  # notes, ownership, tags, snoozes...: nothing for the timeline
    state, verb, time_key = _ACTIONS[action.lower()]
    alert = require(body, "alert", dict)
    alias = (optional(alert, "alias", str, "alert") or "").strip()
    alert_id = (optional(alert, "alertId", str, "alert") or "").strip()
    subject = alias or alert_id
    if not subject:
        raise MappingError("alert.alias: missing, and no alert.alertId")
    created = epoch_time(alert.get("createdAt"), "alert.createdAt")
    occurred = epoch_time(alert.get(time_key), f"alert.{time_key}")
    time_source: TimeSource = "source"
    if occurred is None:
        occurred, time_source = delivery.received_at, "receipt"
    tags = alert.get("tags")
    tag_list = [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []
    priority = optional(alert, "priority", str, "alert")
    message = (optional(alert, "message", str, "alert") or "").strip()
    tiny = optional(alert, "tinyId", str, "alert")
    label = f"Opsgenie alert #{tiny}" if tiny else "Opsgenie alert"
    verb_words = {"triggered": "created", "acknowledged": "acknowledged", "resolved": "closed"}
    facts = {
        "alert_id": alert_id or None,
        "tiny_id": tiny,
        "alias": alias or None,
        "entity": (optional(alert, "entity", str, "alert") or "").strip() or None,
        "priority": priority,
        "opsgenie_action": action,
        "integration": optional(body, "integrationName", str),
        "created_at": format_time(created) if created and verb != "triggered" else None,
    }
    return [
        Signal(
            source=SOURCE,
            kind="alert",
            subject=subject,
            state=state,
            occurred_at=occurred,
            notified_at=delivery.received_at,
            service=tag_pairs(tag_list).get("service"),
            severity=severity_from(priority),
            summary=clip(no_people(f"{label} {verb_words[verb]}"
                                   + (f": {message}" if message else ""))),
            time_source=time_source,
            started_at=created if verb == "resolved" else None,
            action=verb,
            attributes=tuple((k, v) for k, v in facts.items() if v),
        )
    ]


def epoch_time(value: Any, where: str) -> datetime | None:
    """An epoch number in seconds, milliseconds, microseconds or nanoseconds, told apart
    by magnitude (any time after 1973 has more digits in each finer unit); None when
    missing or zero."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise MappingError(f"{where}: expected an epoch time")
    try:
        number = int(value) if not isinstance(value, float) else value
    except ValueError:
        raise MappingError(f"{where}: not an epoch time: {str(value)[:40]!r}") from None
    if number <= 0:
        return None
    if number > 1e17:
        return _EPOCH + timedelta(microseconds=int(number) // 1000)
    if number > 1e14:
        return _EPOCH + timedelta(microseconds=int(number))
    if number > 1e11:
        return _EPOCH + timedelta(milliseconds=number)
    return _EPOCH + timedelta(seconds=number)
