"""UptimeRobot: the "Webhook" alert contact.

UptimeRobot replaces its alert variables (help.uptimerobot.com "Webhook Integration";
uptimerobot.com/api alert contacts) in the URL or the POST body: ``*monitorID*``,
``*monitorURL*``, ``*monitorFriendlyName*``, ``*alertType*`` (1 down, 2 up, 3 SSL
expiry), ``*alertTypeFriendlyName*``, ``*alertDetails*``, ``*alertDuration*`` (seconds),
``*alertDateTime*`` (Unix seconds), ``*sslExpiryDate*``, ``*sslExpiryDaysLeft*``.

Accepted bodies: "Send default variables as POST parameters"
(``application/x-www-form-urlencoded``, one field per variable, named as the variable),
or "Send as JSON" with a body that keeps those names as keys, e.g.
``{"monitorID": "*monitorID*", "alertType": "*alertType*", ...}``. Values may be strings
or numbers.

Choices where the documentation is silent:

- A delivery whose ``monitorID`` is ``0`` or still the literal ``*monitorID*`` is a test
  of the contact (nothing was substituted, no real monitor): no signals.
- An "up" alert's ``alertDuration`` is how long the monitor was down, so it carries
  ``started_at`` = ``alertDateTime`` − duration, like any recovery that knows its start.
- SSL expiry (3) is an ``ssl`` signal whose subject is the monitored URL's host, so a
  warning never stands in for the monitor's own up/down state. ``sslExpiryDate`` is read
  when it parses as a date or Unix time; otherwise ``expires_at`` is estimated from
  ``alertDateTime`` (or the receipt) plus ``sslExpiryDaysLeft`` and says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ingest.delivery import Delivery, MappingError
from ingest.signals import Link, Signal, State, TimeSource, format_time
from ingest.sources._common import clip, from_epoch, host_of, http_url, no_people, parse_time

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

SOURCE = "uptimerobot"
DOWN, UP, SSL_EXPIRY = 1, 2, 3


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json_or_form()
    if not isinstance(body, dict):
        raise MappingError("body: expected an object")
    monitor_id = _text(body, "monitorID")
    if monitor_id in ("", "0", "*monitorID*"):
        return []
    alert_type = _integer(body, "alertType")
    name = _text(body, "monitorFriendlyName")
    if not name:
        raise MappingError("monitorFriendlyName: missing")
    url = _text(body, "monitorURL")

    occurred_at = _epoch(body, "alertDateTime")
    time_source: TimeSource = "source"
    if occurred_at is None:
        occurred_at, time_source = delivery.received_at, "receipt"
    details = _text(body, "alertDetails") or _text(body, "alertTypeFriendlyName")
    attributes = [("monitor_id", monitor_id)]
    link = http_url(url)
    links = (Link(url=link, title="monitored URL"),) if link else ()

    if alert_type == SSL_EXPIRY:
        return [_ssl(body, delivery, name, url, occurred_at, time_source, attributes, links)]
    if alert_type not in (DOWN, UP):
        raise MappingError(
            f"alertType: expected 1 (down), 2 (up) or 3 (SSL expiry), got {alert_type}"
        )
    state: State = "failing" if alert_type == DOWN else "ok"
    started_at = None
    duration = _integer(body, "alertDuration", required=False)
    if alert_type == UP and duration and duration > 0 and time_source == "source":
        started_at = occurred_at - timedelta(seconds=duration)
        attributes.append(("down_for_seconds", str(duration)))
    return [
        Signal(
            source=SOURCE,
            kind="uptime",
            subject=name,
            state=state,
            occurred_at=occurred_at,
            notified_at=delivery.received_at,
            summary=clip(no_people(details or name)),
            time_source=time_source,
            started_at=started_at,
            links=links,
            attributes=tuple(attributes),
        )
    ]


def _ssl(
    body: dict[str, Any],
    delivery: Delivery,
    name: str,
    url: str,
    occurred_at: datetime,
    time_source: TimeSource,
    attributes: list[tuple[str, str]],
    links: tuple[Link, ...],
) -> Signal:
    days = _integer(body, "sslExpiryDaysLeft", required=False)
    expires_at = _optional_time(_text(body, "sslExpiryDate"))
    estimated = False
    if expires_at is None and days is not None:
        expires_at, estimated = occurred_at + timedelta(days=days), True
    expired = (days is not None and days <= 0) or (
        expires_at is not None and not estimated and expires_at <= occurred_at
    )
    attributes = [*attributes, ("monitor", name)]
    if expires_at is not None:
        attributes.append(("expires_at", format_time(expires_at)))
        if estimated:
            attributes.append(("expires_at_estimated", "true"))
    if days is not None:
        attributes.append(("days_left", str(days)))
    if expired and expires_at is not None and not estimated:
        # An expired certificate fails at its notAfter (TIMELINE.md, rule 6).
        occurred_at, time_source = expires_at, "source"
    details = _text(body, "alertDetails") or _text(body, "alertTypeFriendlyName")
    return Signal(
        source=SOURCE,
        kind="ssl",
        subject=host_of(url) or name,
        state="failing" if expired else "warning",
        occurred_at=occurred_at,
        notified_at=delivery.received_at,
        summary=clip(no_people(details or f"SSL certificate of {name} expires soon")),
        time_source=time_source,
        links=links,
        attributes=tuple(attributes),
    )


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MappingError(f"{key}: expected a string or a number")
    return str(value).strip()


def _integer(body: dict[str, Any], key: str, *, required: bool = True) -> int | None:
    text = _text(body, key)
    if not text or text == f"*{key}*":
        if required:
            raise MappingError(f"{key}: missing")
        return None
    try:
        return int(float(text))
    except ValueError:
        raise MappingError(f"{key}: expected a number, got {text[:20]!r}") from None


def _epoch(body: dict[str, Any], key: str) -> datetime | None:
    text = _text(body, key)
    if not text or text == f"*{key}*":
        return None
    return from_epoch(text)


def _optional_time(text: str) -> datetime | None:
    """``sslExpiryDate`` in whatever form the account renders; None when unreadable."""
    if not text or text.startswith("*"):
        return None
    try:
        if text.replace(".", "", 1).isdigit():
            return from_epoch(text)
        return parse_time(text)
    except MappingError:
        return None
