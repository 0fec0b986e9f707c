"""Better Stack Uptime: the "Incident" outgoing webhook.

Documented at betterstack.com/docs/uptime/webhooks/ ("You will get a POST request when a
new incident is created, acknowledged, or resolved") with the incident in the Uptime
API's JSON:API form (betterstack.com/docs/uptime/api/incidents-api-response-params/):
``data.id``, ``data.type`` "incident", ``data.attributes`` (``name``, ``url``,
``http_method``, ``cause``, ``started_at``, ``acknowledged_at``, ``acknowledged_by``,
``resolved_at``, ``resolved_by``, ``status``, ``team_name``, ``regions``, ...) and
``data.relationships.monitor``.

- subject: ``attributes.name``, the monitor's name that the incident is named after.
- what happened: ``resolved_at`` set → resolved (``ok`` at ``resolved_at``, carrying
  ``started_at``); else ``acknowledged_at`` set → acknowledged; else started. ``status``
  decides when it says Resolved/Acknowledged/Started; the times decide otherwise.
  ``action`` is ``triggered``, ``acknowledged`` or ``resolved``, as for on-call tools.
- an acknowledgement changes nobody's state: it is the page's acknowledgement, dated at
  the incident's ``acknowledged_at`` (the projector's ``acknowledged_at`` moment, as for
  PagerDuty), ``failing`` because the monitor still fails. The incident's
  ``started_at`` goes into ``attributes`` (``incident_started_at``).
- ``acknowledged_by``/``resolved_by`` name people: never copied (blameless drafts).
- SSL incidents: Better Stack opens incidents for certificates that expire soon or have
  expired (monitor settings "SSL verification"/"SSL expiration"). Its docs do not spell
  the ``cause`` text; we recognise a cause naming an SSL/TLS certificate: "expired" or
  "invalid" → ``failing``, otherwise → ``warning`` (with ``days_left`` when the cause has
  "N days"). Those signals are ``kind: ssl`` with the URL's host as subject, so they never
  stand in for the monitor's up/down state. A resolved warning is the certificate's
  ``ok`` at ``resolved_at`` with no start: a warning never failed (TIMELINE.md rule 6),
  so its resolution is no failing period seen after the fact (rule 4) and opens nothing;
  it ends the risk. An acknowledged warning is still only the warning (action
  ``triggered``, at ``started_at``): acknowledging it acknowledges no outage.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from ingest.delivery import Delivery, MappingError
from ingest.signals import Kind, Link, Signal, State, TimeSource, format_time
from ingest.sources._common import clip, host_of, http_url, no_people, optional, parse_time, require

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

SOURCE = "betterstack"
ACTIONS = {"started": "triggered", "acknowledged": "acknowledged", "resolved": "resolved"}

_CERTIFICATE = re.compile(r"\b(ssl|tls|certificate)\b", re.IGNORECASE)
_EXPIRED = re.compile(r"\b(expired|invalid|revoked|untrusted|self[- ]signed)\b", re.IGNORECASE)
_DAYS = re.compile(r"(\d+)\s+days?", re.IGNORECASE)


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json()
    data = require(body, "data", dict)
    kind_of = optional(data, "type", str, "data")
    if kind_of is not None and kind_of != "incident":
        # Monitor and on-call webhooks share the endpoint shape; they say nothing failed.
        return []
    attributes = require(data, "attributes", dict, "data")
    where = "data.attributes"
    name = require(attributes, "name", str, where).strip()
    if not name:
        raise MappingError(f"{where}.name: empty")
    started = parse_time(require(attributes, "started_at", str, where))
    acknowledged = parse_time(attributes.get("acknowledged_at"))
    resolved = parse_time(attributes.get("resolved_at"))
    status = (optional(attributes, "status", str, where) or "").strip().lower()
    if status in ACTIONS:
        action = ACTIONS[status]
    elif resolved is not None:
        action = "resolved"
    elif acknowledged is not None:
        action = "acknowledged"
    else:
        action = "triggered"  # Unconfirmed, Validating: still a failure in progress

    cause = optional(attributes, "cause", str, where) or ""
    url = optional(attributes, "url", str, where) or ""
    facts = [("incident_id", str(data.get("id", "")))]
    monitor = _monitor_id(data)
    if monitor:
        facts.append(("monitor_id", monitor))
    if cause:
        facts.append(("cause", clip(no_people(cause), 300)))
    if acknowledged is not None:
        facts.append(("acknowledged_at", format_time(acknowledged)))

    kind: Kind = "uptime"
    subject = name
    state: State = "ok" if action == "resolved" else "failing"
    # A resolution carries the incident's start: a failing period seen after the fact
    # (TIMELINE.md rule 4), unless what was resolved was only a warning (rule 6).
    period_start = started if action == "resolved" else None
    if _CERTIFICATE.search(cause):
        kind, subject = "ssl", host_of(url) or name
        facts.append(("monitor", name))
        if not _EXPIRED.search(cause):
            period_start = None
            if action != "resolved":
                state = "warning"
            if action == "acknowledged":
                # Someone acknowledged a warning, not an outage: it must not stand as the
                # acknowledgement of whatever incident its service has open (rule 6: a
                # warning belongs to no incident). It stays the warning it was.
                action = "triggered"
            days = _DAYS.search(cause)
            if days and started is not None:
                facts.append(("days_left", days.group(1)))
                estimate = started + timedelta(days=int(days.group(1)))
                facts += [("expires_at", format_time(estimate)), ("expires_at_estimated", "true")]

    occurred_at: datetime | None
    if action == "resolved":
        occurred_at = resolved
    elif action == "acknowledged":
        occurred_at = acknowledged
        if started is not None:
            facts.append(("incident_started_at", format_time(started)))
    else:
        occurred_at = started
    started_at = period_start
    time_source: TimeSource = "source"
    if occurred_at is None:
        occurred_at, time_source = delivery.received_at, "receipt"
    link = http_url(url)
    return [
        Signal(
            source=SOURCE,
            kind=kind,
            subject=subject,
            state=state,
            occurred_at=occurred_at,
            notified_at=delivery.received_at,
            summary=clip(no_people(cause or f"{name}: incident {action}")),
            time_source=time_source,
            started_at=started_at,
            action=action,
            links=(Link(url=link, title="monitored URL"),) if link else (),
            attributes=tuple(facts),
        )
    ]


def _monitor_id(data: dict[str, Any]) -> str | None:
    relationships = data.get("relationships")
    if not isinstance(relationships, dict):
        return None
    monitor = relationships.get("monitor")
    inner = monitor.get("data") if isinstance(monitor, dict) else None
    if isinstance(inner, dict) and inner.get("id") is not None:
        return str(inner["id"])
    return None
