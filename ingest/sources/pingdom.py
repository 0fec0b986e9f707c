"""Pingdom: state change webhooks.

Pingdom POSTs one JSON object when an uptime check changes state (UP <-> DOWN) or a
transaction check does (SUCCESS <-> FAILING) (pingdom.com/resources/webhooks, "State
change webhooks", its HTTP-check and transaction-check examples): ``check_id``,
``check_name``, ``check_type`` (HTTP, HTTP_CUSTOM, TCP, PING, DNS, UDP, SMTP, POP3,
IMAP, TRANSACTION), ``check_params`` (``hostname``, ``full_url``, ``url``, ``port``,
...), ``tags`` (a list of strings), ``previous_state``, ``current_state``,
``importance_level`` (HIGH or LOW), ``state_changed_timestamp`` (Unix seconds),
``state_changed_utc_time`` (the same instant, UTC without a zone), ``description``,
``long_description``, ``first_probe`` and ``second_probe`` (``ip``, ``ipv6``,
``location``: the probe that failed and the one that confirmed it); a transaction check
adds ``custom_message`` and ``error_message``.

Mapping: ``DOWN``/``FAILING`` is ``failing``, ``UP``/``SUCCESS`` is ``ok``; any other
state (Pingdom's ``unconfirmed_down``, ``unknown``, ``paused``) changes nothing the
timeline records and maps to no signals. A body without ``check_id`` is a hand-made test
(Pingdom documents no test message): no signals. The service is the check's
``service:<name>`` tag; severity a ``severity:`` or ``priority:`` tag, else
``importance_level`` (HIGH → P2, LOW → P4).
"""

from __future__ import annotations

from datetime import UTC

from ingest.delivery import Delivery, MappingError
from ingest.signals import Link, Signal, State, TimeSource
from ingest.sources._common import (
    clip,
    from_epoch,
    http_url,
    no_people,
    parse_time,
    safe_labels,
    scalar_text,
    service_from_labels,
    severity_from,
    tag_pairs,
)

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

SOURCE = "pingdom"
STATES: dict[str, State] = {"DOWN": "failing", "FAILING": "failing",
                            "UP": "ok", "SUCCESS": "ok"}
NOT_A_CHANGE = frozenset({"UNCONFIRMED_DOWN", "UNKNOWN", "PAUSED"})


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json()
    if not isinstance(body, dict):
        raise MappingError("body: expected an object")
    check_id = scalar_text(body, "check_id")
    if check_id in ("", "0"):
        return []
    current = scalar_text(body, "current_state").upper()
    if not current:
        raise MappingError("current_state: missing")
    if current in NOT_A_CHANGE:
        return []
    state = STATES.get(current)
    if state is None:
        raise MappingError(f"current_state: expected UP, DOWN, SUCCESS or FAILING, got "
                           f"{current[:30]!r}")
    name = scalar_text(body, "check_name")
    if not name:
        raise MappingError("check_name: missing")

    occurred_at = None
    if scalar_text(body, "state_changed_timestamp"):
        occurred_at = from_epoch(scalar_text(body, "state_changed_timestamp"))
    if occurred_at is None:  # documented as UTC without a zone
        occurred_at = parse_time(scalar_text(body, "state_changed_utc_time") or None, assume=UTC)
    time_source: TimeSource = "source"
    if occurred_at is None:
        occurred_at, time_source = delivery.received_at, "receipt"

    tags = body.get("tags")
    pairs = tag_pairs(tags if isinstance(tags, list) else [])
    params = body.get("check_params")
    params = params if isinstance(params, dict) else {}
    link = http_url(params.get("full_url"))
    attributes = [("check_id", check_id)]
    for key in ("check_type", "previous_state", "importance_level"):
        value = scalar_text(body, key)
        if value:
            attributes.append((key, value.upper()))
    for key in ("first_probe", "second_probe"):
        probe = body.get(key)
        if isinstance(probe, dict) and isinstance(probe.get("location"), str) \
                and probe["location"]:
            attributes.append((f"{key}_location", probe["location"]))
    summary = (scalar_text(body, "error_message") or scalar_text(body, "description")
               or scalar_text(body, "long_description") or f"{name} is {current}")
    return [
        Signal(
            source=SOURCE,
            kind="uptime",
            subject=name,
            state=state,
            occurred_at=occurred_at,
            notified_at=delivery.received_at,
            service=service_from_labels(pairs),
            severity=severity_from(pairs.get("severity"), pairs.get("priority"),
                                   scalar_text(body, "importance_level")),
            summary=clip(no_people(summary)),
            time_source=time_source,
            links=(Link(url=link, title="checked URL"),) if link else (),
            labels=safe_labels(pairs),
            attributes=tuple(attributes),
        )
    ]

