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

What a down notification's ``$JSON`` says (``hc/api/models.py`` ``Check.to_dict``, read
when the notification is sent, after ``sendalerts`` set the check down): ``status``
"down", ``next_ping`` **null** (``get_grace_start`` returns None for a check that is down;
the API docs' "Get a list of checks" example shows the same), ``last_ping`` (the last
success or ``/fail`` ping, never a ``/start``), ``started`` (a run sent ``/start`` and no
finish yet), ``grace``, and ``schedule`` + ``tz`` (cron and OnCalendar checks) or
``timeout`` (period checks). ``$NOW`` is the flip's own time (``flip.created``, whole
seconds, since Healthchecks v3.4): for a check that went down by timeout,
``handle_going_down`` dates the flip at ``going_down_after()`` = grace start + grace, the
grace start being the deadline or, for a run that started earlier, its ``/start``.

A down signal's ``occurred_at`` is when the check failed, not when Healthchecks flipped
it after the grace period (TIMELINE.md, rule 8):

1. The deadline: the first one after ``last_ping``, the next tick of a cron
   ``schedule`` in ``tz`` (``cronsim``, Healthchecks' own evaluator) or
   ``last_ping + timeout``. An OnCalendar schedule has no evaluator here: its deadline
   is Healthchecks' own grace start, ``$NOW − grace``.
2. A failure the job reported itself (``/fail``, a non-zero exit status) flips the check
   at the ping: the flip is less than ``grace`` after ``last_ping`` (a timeout flip never
   is). ``occurred_at`` = ``last_ping``.
3. A run that started and did not finish (``started`` true): the failure starts at the
   grace start, ``$NOW − grace``: the run's ``/start`` when that was before the deadline
   ("started at X and did not finish within the grace period"), else the deadline.
4. Otherwise the run was missed: ``occurred_at`` = the deadline.
5. Without a deadline, the flip time (``$NOW``); without that, the receipt.

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

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

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
        started = check.get("started") is True
        occurred_at, how, deadline = _failure_time(
            last_ping, schedule, tz, timeout, grace, started, down_at, delivery)
        if how == "missed_run":
            attributes.append(("missed_run", format_time(occurred_at)))
            summary = f"{name} missed the run due {format_time(occurred_at)}"
        elif how == "hung_run":
            within = f"within its grace period ({_span(grace)})" if grace else "in time"
            attributes.append(("hung_run", format_time(occurred_at)))
            if deadline is None or occurred_at < deadline:
                attributes.append(("run_started_at", format_time(occurred_at)))
                summary = (f"{name} started a run at {format_time(occurred_at)} that did "
                           f"not finish {within}")
            else:
                summary = (f"{name} started the run due {format_time(deadline)}, which did "
                           f"not finish {within}")
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
    last_ping: datetime | None,
    schedule: str,
    tz: str,
    timeout: timedelta | None,
    grace: timedelta | None,
    started: bool,
    down_at: datetime | None,
    delivery: Delivery,
) -> tuple[datetime, str, datetime | None]:
    """When the check failed, how we know (missed_run, hung_run, failure_ping, flip,
    receipt), and the deadline when one is known: the module's steps 1 to 5."""
    # 1. The deadline after the last ping; Healthchecks' grace start from the flip.
    deadline = None
    if last_ping is not None:
        if schedule:
            deadline = _next_tick(schedule, tz, last_ping)
        elif timeout is not None:
            deadline = last_ping + timeout
    grace_start = down_at - grace if down_at is not None and grace else None
    flipped = down_at or delivery.received_at
    # 2. A failure ping flips the check at once; a timeout, a grace period after a
    # deadline or start that came after the last ping.
    if last_ping is not None and not started:
        if grace is not None and flipped - last_ping < grace:
            return last_ping, "failure_ping", deadline
        if grace is None and deadline is not None and deadline > flipped:
            return last_ping, "failure_ping", deadline
    # 3. A run that started and never finished.
    if started:
        begun = grace_start if grace_start is not None and (
            deadline is None or grace_start < deadline) else None
        moment = begun or deadline or grace_start
        if moment is not None:
            return moment, "hung_run", deadline
    # 4. A missed run.
    if deadline is not None and deadline <= flipped:
        return deadline, "missed_run", deadline
    if deadline is None and grace_start is not None and last_ping is not None:
        return grace_start, "missed_run", grace_start  # OnCalendar: Healthchecks' deadline
    # 5. What the tool said, else our receipt.
    if down_at is not None:
        return down_at, "flip", deadline
    return delivery.received_at, "receipt", deadline


def _span(value: timedelta) -> str:
    """``1 h``, ``30 min``, ``1 h 30 min``, ``90 s``: a grace period as people write it."""
    seconds = int(value.total_seconds())
    if seconds % 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    parts = ([f"{hours} h"] if hours else []) + ([f"{minutes} min"] if minutes else [])
    return " ".join(parts) or "0 s"


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
