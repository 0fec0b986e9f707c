"""Uptime Kuma: the "Webhook" notification provider.

Built by louislam/uptime-kuma ``server/notification-providers/webhook.js``: it POSTs
``{heartbeat, monitor, msg}`` where ``heartbeat`` is ``server/model/heartbeat.js``
``toJSON()`` (``monitorID``, ``status`` 0 down / 1 up / 2 pending / 3 maintenance,
``time`` in UTC as ``YYYY-MM-DD HH:mm:ss.SSS`` without a zone, ``msg``, ``ping``,
``important``, ``duration``; plus ``timezone``, ``timezoneOffset`` and ``localDateTime``,
the server's local rendering, which we ignore) and ``monitor`` is
``server/model/monitor.js`` ``toJSON()`` (``id``, ``name``, ``pathName``, ``url``,
``hostname``, ``type``, ``tags`` as ``{name, value, color, ...}`` rows, ...).

Accepted bodies, by the provider's "Request Body" setting:

- "Preset - application/json": the object above.
- "Preset - multipart/form-data": one field ``data`` holding that object as JSON.
- "Custom Body": whatever the user's template renders; we accept it when it is a JSON
  object with ``heartbeat``/``monitor`` (or the template variable names
  ``heartbeatJSON``/``monitorJSON``) and ``msg``, e.g.
  ``{"heartbeat": {{ heartbeatJSON | json }}, "monitor": {{ monitorJSON | json }},
  "msg": {{ msg | json }}}``. Anything else cannot be mapped.

Messages without a heartbeat: the "Test" button (``"<name> Testing"``) and other
notices map to no signals, except certificate expiry, which ``monitor.js`` sends as the
text ``[<monitor>][<url>] <type> certificate <CN> will be expired in <N> days``: an
``ssl`` warning whose subject is the certificate's host (not the monitor's name, so a
warning never stands in for the monitor's up/down state). Kuma gives no expiry date, only
whole days from its own clock, so ``expires_at`` is estimated from the receipt and says
so (``expires_at_estimated``).

Pending (2) is a retry before "down" and maintenance (3) is no failure: neither changes
what the timeline records, so both map to no signals.
"""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from typing import Any

import orjson

from ingest.delivery import BodyError, Delivery, MappingError
from ingest.signals import Link, Signal, State, TimeSource, format_time
from ingest.sources._common import (
    clip,
    host_of,
    http_url,
    multipart_fields,
    no_people,
    optional,
    parse_time,
    require,
    safe_labels,
    service_from_labels,
    severity_from_labels,
)

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

SOURCE = "uptime-kuma"
DOWN, UP, PENDING, MAINTENANCE = 0, 1, 2, 3
STATES: dict[int, State] = {DOWN: "failing", UP: "ok"}

_CERT_EXPIRY = re.compile(
    r"^\[(?P<monitor>.*)\]\[(?P<url>[^\]]*)\] (?P<type>.*?) ?certificate (?P<cn>\S*) "
    r"will be expired in (?P<days>-?\d+) days?$",
    re.DOTALL,
)


def parse(delivery: Delivery) -> list[Signal]:
    body = _body(delivery)
    heartbeat = body.get("heartbeat", body.get("heartbeatJSON"))
    monitor = body.get("monitor", body.get("monitorJSON"))
    msg = optional(body, "msg", str) or ""
    if heartbeat is None:
        return _message_only(msg, delivery)
    if not isinstance(heartbeat, dict):
        raise MappingError("heartbeat: expected an object")
    if not isinstance(monitor, dict):
        raise MappingError("monitor: expected an object")

    status = require(heartbeat, "status", int, "heartbeat")
    state = STATES.get(status)
    if state is None:
        if status in (PENDING, MAINTENANCE):
            return []
        raise MappingError(f"heartbeat.status: expected 0 to 3, got {status}")
    name = require(monitor, "name", str, "monitor").strip()
    if not name:
        raise MappingError("monitor.name: empty")

    occurred_at = parse_time(heartbeat.get("time"), assume=UTC)  # documented as UTC
    time_source: TimeSource = "source"
    if occurred_at is None:
        occurred_at, time_source = delivery.received_at, "receipt"
    tags = _tags(monitor.get("tags"))
    url = http_url(monitor.get("url"))
    attributes = [("monitor_id", str(monitor.get("id", heartbeat.get("monitorID", ""))))]
    for key in ("type", "hostname"):
        value = monitor.get(key)
        if isinstance(value, str) and value:
            attributes.append((f"monitor_{key}", value))
    summary = heartbeat.get("msg") if isinstance(heartbeat.get("msg"), str) else ""
    return [
        Signal(
            source=SOURCE,
            kind="uptime",
            subject=name,
            state=state,
            occurred_at=occurred_at,
            notified_at=delivery.received_at,
            service=service_from_labels(tags),
            severity=severity_from_labels(tags),
            summary=clip(no_people(summary or msg or name)),
            time_source=time_source,
            links=(Link(url=url, title="monitored URL"),) if url else (),
            labels=safe_labels(tags),
            attributes=tuple(attributes),
        )
    ]


def _body(delivery: Delivery) -> dict[str, Any]:
    if delivery.content_type == "multipart/form-data":
        fields = multipart_fields(delivery.body, delivery.header("content-type") or "")
        if "data" not in fields:
            raise BodyError("form-data body has no 'data' field")
        try:
            body = orjson.loads(fields["data"])
        except orjson.JSONDecodeError as exc:
            raise BodyError(f"form-data 'data' is not valid JSON: {exc.args[0]}") from None
    else:
        body = delivery.json()
    if not isinstance(body, dict):
        raise MappingError("body: expected an object")
    return body


def _tags(raw: Any) -> dict[str, str]:
    """Monitor tags as name -> value (a tag without a value keeps an empty one)."""
    tags: dict[str, str] = {}
    if not isinstance(raw, list):
        return tags
    for tag in raw:
        if isinstance(tag, dict) and isinstance(tag.get("name"), str):
            value = tag.get("value")
            tags.setdefault(tag["name"], value if isinstance(value, str) else "")
    return tags


def _message_only(msg: str, delivery: Delivery) -> list[Signal]:
    match = _CERT_EXPIRY.match(msg.strip())
    if match is None:
        return []  # the Test button, or a notice that is no state of anything checked
    url = match["url"]
    host = host_of(url) or match["cn"] or match["monitor"]
    days = int(match["days"])
    expires_at = delivery.received_at + timedelta(days=days)
    attributes = [
        ("expires_at", format_time(expires_at)),
        ("expires_at_estimated", "true"),
        ("days_left", str(days)),
        ("monitor", match["monitor"]),
        ("certificate_cn", match["cn"]),
    ]
    if match["type"]:
        attributes.append(("certificate_type", match["type"]))
    link = http_url(url)
    return [
        Signal(
            source=SOURCE,
            kind="ssl",
            subject=host,
            state="warning" if days > 0 else "failing",
            occurred_at=delivery.received_at,
            notified_at=delivery.received_at,
            summary=clip(msg),
            time_source="receipt",
            links=(Link(url=link, title="monitored URL"),) if link else (),
            attributes=tuple(attributes),
        )
    ]
