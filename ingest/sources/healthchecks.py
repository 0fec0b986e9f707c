"""Healthchecks.io (and self-hosted Healthchecks): the "Webhook" integration.

The body is the user's own template (healthchecks.io/docs/webhooks/); Healthchecks
fills it in ``hc/integrations/webhook/transport.py`` with ``$NAME``, ``$NAME_JSON``,
``$SLUG``, ``$STATUS`` (the flip's new status, ``up``/``down``), ``$NOW`` (the flip's
time, ISO 8601 in UTC, whole seconds), ``$CODE``, ``$TAGS`` (space-separated) and
``$JSON``: the check as the Management API shows it (``hc/api/models.py``
``Check.to_dict``: ``name``, ``slug``, ``tags``, ``desc``, ``grace``, ``n_pings``,
``status``, ``started``, ``last_ping``, ``next_ping``, ``manual_resume``, ``methods``,
and ``timeout`` for period checks or ``schedule`` + ``tz`` for cron/OnCalendar ones).

Accepted bodies (JSON objects; Healthchecks sends no Content-Type unless configured):

1. The recommended template, which has both the flip and the check::

       {"name": $NAME_JSON, "status": "$STATUS", "now": "$NOW", "code": "$CODE",
        "tags": "$TAGS", "check": $JSON}

2. The small template alone: ``{"name": "$NAME", "status": "$STATUS", "now": "$NOW"}``
   (plus optional ``code``, ``slug``, ``tags``): the down time is ``$NOW``.
3. ``$JSON`` alone (recognised by ``last_ping``/``next_ping``/``n_pings``): no flip time,
   so the receipt stands in for it when judging the run (see step 3 below).

A down signal's ``occurred_at`` is when the check failed, not when Healthchecks flipped
it after the grace period (TIMELINE.md, rule 8):

1. From the check's ``last_ping``, the first deadline after it: the next tick of
   ``schedule`` in ``tz`` (computed with ``cronsim``, Healthchecks' own evaluator), or
   ``last_ping + timeout`` for a period check.
2. If the schedule is not a cron expression (OnCalendar), Healthchecks' own ``next_ping``
   is that same deadline.
3. If the deadline is at or before the flip (``$NOW``, else the receipt), the run was
   missed: ``occurred_at`` = the deadline. If it is later, the job reported its failure
   itself (``/fail``, non-zero exit status) at ``last_ping``: ``occurred_at`` =
   ``last_ping``. Without a deadline, the flip time; without that, the receipt.

``down_at`` (the flip), ``schedule``, ``tz``, ``timeout``, ``grace``, ``last_ping`` and the
``missed_run`` go into ``attributes``. Tags of the form ``service:x`` / ``app:x`` /
``severity:x`` (or ``=``) give the service and the severity. The "Test" button's
notification (a made-up check named ``TEST``, 42 pings) maps to no signals.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from ingest.delivery import Delivery, MappingError
from ingest.signals import Signal, State, TimeSource, format_time
from ingest.sources._common import (
    clip,
    no_people,
    parse_time,
    safe_labels,
    service_from_labels,
    severity_from_labels,
    tag_pairs,
)

SOURCE = "healthchecks"
STATES: dict[str, State] = {"down": "failing", "up": "ok"}
CHECK_KEYS = ("last_ping", "next_ping", "n_pings")


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json()
    if not isinstance(body, dict):
        raise MappingError("body: expected an object")
    if isinstance(body.get("check"), dict):
        flip, check = body, body["check"]
    elif any(key in body for key in CHECK_KEYS):
        flip, check = {}, body
    else:
        flip, check = body, {}

    name = _first_text(flip.get("name"), check.get("name"), flip.get("slug"), check.get("slug"))
    if not name:
        raise MappingError("name: missing")
    if name == "TEST" and check.get("n_pings", 42) == 42:
        return []  # the integration's "Test" button
    status = _first_text(flip.get("status"), check.get("status")).lower()
    state = STATES.get(status)
    if state is None:
        raise MappingError(f"status: expected up or down, got {status[:20]!r}")

    down_at = parse_time(flip.get("now"))
    last_ping = parse_time(check.get("last_ping"))
    schedule = _first_text(check.get("schedule"))
    tz = _first_text(check.get("tz")) or "UTC"
    timeout = _seconds(check.get("timeout"), "timeout")
    grace = _seconds(check.get("grace"), "grace")

    attributes: list[tuple[str, str]] = []
    if down_at is not None:
        attributes.append(("down_at" if state == "failing" else "up_at", format_time(down_at)))
    if schedule:
        attributes += [("schedule", schedule), ("tz", tz)]
    if timeout is not None:
        attributes.append(("timeout", str(int(timeout.total_seconds()))))
    if grace is not None:
        attributes.append(("grace", str(int(grace.total_seconds()))))
    if last_ping is not None:
        attributes.append(("last_ping", format_time(last_ping)))
    code = _first_text(flip.get("code"))
    if code:
        attributes.append(("code", code))

    time_source: TimeSource = "source"
    if state == "failing":
        occurred_at, how = _failure_time(check, last_ping, schedule, tz, timeout, down_at, delivery)
        if how == "missed_run":
            attributes.append(("missed_run", format_time(occurred_at)))
            summary = f"{name} missed the run due {format_time(occurred_at)}"
        elif how == "failure_ping":
            summary = f"{name} reported a failure"
        else:
            summary = f"{name} is down"
        if how == "receipt":
            time_source = "receipt"
    else:
        # The ping that brought the check up is its last ping; $NOW is the same moment.
        recovered = down_at or last_ping
        occurred_at = recovered or delivery.received_at
        time_source = "source" if recovered else "receipt"
        summary = f"{name} is up"
    desc = _first_text(check.get("desc"))
    if desc:
        summary = f"{summary}: {no_people(desc)}"

    tags = _first_text(flip.get("tags"), check.get("tags"))
    pairs = tag_pairs(tags)
    bare = {word: "" for word in tags.split() if ":" not in word and "=" not in word}
    return [
        Signal(
            source=SOURCE,
            kind="cron",
            subject=name,
            state=state,
            occurred_at=occurred_at,
            notified_at=delivery.received_at,
            service=service_from_labels(pairs),
            severity=severity_from_labels(pairs),
            summary=clip(summary),
            time_source=time_source,
            labels=safe_labels({**bare, **pairs}),
            attributes=tuple(attributes),
        )
    ]


def _failure_time(
    check: dict[str, Any],
    last_ping: datetime | None,
    schedule: str,
    tz: str,
    timeout: timedelta | None,
    down_at: datetime | None,
    delivery: Delivery,
) -> tuple[datetime, str]:
    """When the check failed, and how we know: missed_run, failure_ping, flip, receipt."""
    deadline = None
    if last_ping is not None:
        if schedule:
            deadline = _next_tick(schedule, tz, last_ping)
        elif timeout is not None:
            deadline = last_ping + timeout
        if deadline is None:
            # OnCalendar schedules: Healthchecks' own next_ping is the same deadline.
            deadline = parse_time(check.get("next_ping"))
    flipped = down_at or delivery.received_at
    if deadline is not None and last_ping is not None:
        if deadline <= flipped:
            return deadline, "missed_run"
        return last_ping, "failure_ping"
    if down_at is not None:
        return down_at, "flip"
    return delivery.received_at, "receipt"


def _next_tick(schedule: str, tz: str, after: datetime) -> datetime | None:
    """The first run of a cron schedule after ``after``, as Healthchecks computes it
    (``Check.get_grace_start``: CronSim from the last ping in the check's zone)."""
    try:
        zone = ZoneInfo(tz)
        tick: datetime = next(CronSim(schedule, after.astimezone(zone)))
    except (CronSimError, ZoneInfoNotFoundError, ValueError, StopIteration):
        return None
    return tick


def _seconds(value: Any, key: str) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MappingError(f"check.{key}: expected a number of seconds")
    return timedelta(seconds=value)


def _first_text(*values: Any) -> str:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""
