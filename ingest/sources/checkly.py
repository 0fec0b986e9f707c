"""Checkly: the "Webhook" alert channel.

Checkly renders a Handlebars template the user writes, with its alert variables
(checklyhq.com/docs/integrations/alerts/webhooks, "Using Variables"; docs.checklyhq.com
``site/content/docs/alerting-and-retries/webhooks.md``): ``{{CHECK_NAME}}``,
``{{CHECK_ID}}``, ``{{CHECK_TYPE}}`` (API, BROWSER, HEARTBEAT, ...), ``{{ALERT_TITLE}}``,
``{{ALERT_TYPE}}``, ``{{CHECK_RESULT_ID}}``, ``{{CHECK_ERROR_MESSAGE}}``,
``{{RESPONSE_TIME}}``, ``{{API_CHECK_RESPONSE_STATUS_CODE}}``, ``{{RUN_LOCATION}}``,
``{{RESULT_LINK}}``, ``{{SSL_DAYS_REMAINING}}`` and ``{{SSL_CHECK_DOMAIN}}`` (ALERT_SSL
only), ``{{STARTED_AT}}`` ("the ISO timestamp from when this check run started"),
``{{TAGS}}``, ``{{GROUP_NAME}}``.

Accepted body: a JSON object whose keys are those variables' names in lower case
(docs/sources/checkly.md gives the template), e.g. ``{"check_name": "{{CHECK_NAME}}",
"alert_type": "{{ALERT_TYPE}}", "started_at": "{{STARTED_AT}}", ...}``; ``tags`` a JSON
list (the documented ``{{#each TAGS}}`` loop) or a comma-separated string.

``ALERT_TYPE`` per the alert states page (docs "Alert states", alert-states.md):

- ``ALERT_FAILURE``, ``ALERT_FAILURE_REMAIN`` (a reminder under a threshold) and
  ``ALERT_DEGRADED_FAILURE`` (escalation) are ``failing``;
- ``ALERT_RECOVERY`` and ``ALERT_DEGRADED_RECOVERY`` are ``ok``;
- ``ALERT_DEGRADED``, ``ALERT_DEGRADED_REMAIN`` and ``ALERT_FAILURE_DEGRADED``
  (de-escalation) are ``warning``: a degraded check is slow, not down, and TIMELINE.md
  rule 3 says only ``ok`` recovers, so a failing check that becomes degraded stays failing
  until Checkly reports it passing;
- ``ALERT_SSL`` is an ``ssl`` warning for ``SSL_CHECK_DOMAIN`` (``failing`` at 0 days or
  less); Checkly sends no expiry date, so ``expires_at`` is the alert's time plus the days
  remaining, marked ``expires_at_estimated``.

Choices where the documentation is silent: a body with no ``check_id`` (nothing
substituted: a hand-made test) maps to no signals; ``NO_ALERT`` too. ``STARTED_AT`` is
the run that made Checkly alert: with a threshold ("alert after 2 failures") the earlier
failing runs are not in the payload, so the failure starts at the alerting run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ingest.delivery import Delivery, MappingError
from ingest.signals import Kind, Link, Signal, State, TimeSource, format_time
from ingest.sources._common import (
    clip,
    host_of,
    http_url,
    no_people,
    parse_time,
    safe_labels,
    scalar_text,
    service_from_labels,
    severity_from_labels,
    tag_pairs,
)

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

SOURCE = "checkly"

STATES: dict[str, State] = {
    "ALERT_FAILURE": "failing",
    "ALERT_FAIL": "failing",  # the older docs' spelling of ALERT_FAILURE
    "ALERT_FAILURE_REMAIN": "failing",
    "ALERT_DEGRADED_FAILURE": "failing",
    "ALERT_RECOVERY": "ok",
    "ALERT_DEGRADED_RECOVERY": "ok",
    "ALERT_DEGRADED": "warning",
    "ALERT_DEGRADED_REMAIN": "warning",
    "ALERT_FAILURE_DEGRADED": "warning",
}
SSL = "ALERT_SSL"
NO_ALERT = "NO_ALERT"


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json()
    if not isinstance(body, dict):
        raise MappingError("body: expected an object")
    check_id = scalar_text(body, "check_id")
    alert_type = scalar_text(body, "alert_type").upper()
    if not check_id or alert_type == NO_ALERT:
        return []  # a test of the channel (nothing substituted), or no alert at all
    if not alert_type:
        raise MappingError("alert_type: missing")
    if alert_type != SSL and alert_type not in STATES:
        raise MappingError(f"alert_type: expected one of Checkly's alert types, got "
                           f"{alert_type[:40]!r}")
    name = scalar_text(body, "check_name")
    if not name:
        raise MappingError("check_name: missing")

    started: datetime | None = parse_time(scalar_text(body, "started_at") or None)
    time_source: TimeSource = "source"
    occurred_at = started
    if occurred_at is None:
        occurred_at, time_source = delivery.received_at, "receipt"
    tags = _tags(body.get("tags"))
    pairs = tag_pairs(tags)
    check_type = scalar_text(body, "check_type").upper()
    attributes = [("check_id", check_id), ("alert_type", alert_type)]
    for key in ("check_type", "check_result_id", "run_location", "response_time",
                "api_check_response_status_code", "group_name"):
        value = scalar_text(body, key)
        if value:
            attributes.append((key, value.upper() if key == "check_type" else value))
    link = http_url(scalar_text(body, "result_link"))
    links = (Link(url=link, title="check result"),) if link else ()
    summary = scalar_text(body, "check_error_message") or scalar_text(body, "alert_title") or name

    if alert_type == SSL:
        return [_ssl(body, delivery, name, occurred_at, time_source, attributes, links)]
    kind: Kind = "cron" if check_type == "HEARTBEAT" else "uptime"
    return [
        Signal(
            source=SOURCE,
            kind=kind,
            subject=name,
            state=STATES[alert_type],
            occurred_at=occurred_at,
            notified_at=delivery.received_at,
            service=service_from_labels(pairs),
            severity=severity_from_labels(pairs),
            summary=clip(no_people(summary)),
            time_source=time_source,
            links=links,
            labels=safe_labels(pairs),
            attributes=tuple(attributes),
        )
    ]


def _ssl(body: dict[str, Any], delivery: Delivery, name: str, occurred_at: datetime,
         time_source: TimeSource, attributes: list[tuple[str, str]],
         links: tuple[Link, ...]) -> Signal:
    domain = scalar_text(body, "ssl_check_domain")
    days_text = scalar_text(body, "ssl_days_remaining")
    try:
        days = int(float(days_text)) if days_text else None
    except ValueError:
        raise MappingError(f"ssl_days_remaining: expected a number, got "
                           f"{days_text[:20]!r}") from None
    attributes = [*attributes, ("check", name)]
    if days is not None:
        # Checkly sends whole days left, no date: the expiry is estimated from the alert.
        attributes += [("expires_at", format_time(occurred_at + timedelta(days=days))),
                       ("expires_at_estimated", "true"), ("days_left", str(days))]
    subject = (host_of(domain) or domain.lower()) if domain else name
    summary = scalar_text(body, "alert_title") or f"SSL certificate of {subject} expires soon"
    return Signal(
        source=SOURCE,
        kind="ssl",
        subject=subject,
        state="failing" if days is not None and days <= 0 else "warning",
        occurred_at=occurred_at,
        notified_at=delivery.received_at,
        summary=clip(no_people(summary)),
        time_source=time_source,
        links=links,
        attributes=tuple(attributes),
    )


def _tags(raw: Any) -> list[str]:
    """``tags``: the documented ``{{#each TAGS}}`` JSON list, or ``{{TAGS}}`` rendered
    as Handlebars renders an array (comma-separated)."""
    if isinstance(raw, list):
        return [t.strip() for t in raw if isinstance(t, str) and t.strip()]
    if isinstance(raw, str):
        return [t.strip() for t in raw.replace(",", " ").split() if t.strip()]
    return []

