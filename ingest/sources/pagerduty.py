"""PagerDuty V3 webhooks (webhook subscriptions): incident lifecycle.

Documented at https://developer.pagerduty.com/docs/webhooks/v3-overview/ (PagerDuty
developer-docs ``docs/webhooks/01-Overview.md``). One event per delivery:
``{"event": {"id", "event_type", "resource_type", "occurred_at", "agent", "client",
"data"}}``, signed with ``X-PagerDuty-Signature`` (checked before this adapter runs).

Mapping (kind ``alert``, subject and service = the PagerDuty service's name, as
TIMELINE.md says; the incident's id and number are attributes):

- ``incident.triggered`` and ``incident.reopened`` → ``failing``, action ``triggered``;
- ``incident.acknowledged`` → ``info``, action ``acknowledged`` (the projector reads it
  as the incident's ``acknowledged_at``);
- ``incident.resolved`` → ``ok``, action ``resolved``;
- ``incident.priority_updated`` on an incident that is not resolved → ``failing``,
  action ``priority_updated``: a repeat that carries the new severity;
- everything else (annotated, reassigned, delegated, escalated, unacknowledged,
  responders, status updates, ``service.*``) and the ``pagey.ping`` test event → no signal.

Severity: the incident priority's name when it is P1–P5 or a severity word (P5 → P4),
else its urgency: ``high`` → P2 (PagerDuty's high urgency pages someone now, but says
nothing of impact: a P1 is a priority someone chose), ``low`` → P4.

``event.agent``, ``assignees``, responders and note contents are never read: they name
people, and the draft is blameless. Notes are engineers' words; they belong in
Hindsight's own notes.
"""

from __future__ import annotations

from ingest.delivery import Delivery, MappingError
from ingest.signals import Link, Signal, State
from ingest.sources._common import clip, optional, parse_time, require, severity_from

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

_EVENTS: dict[str, tuple[State, str]] = {
    "incident.triggered": ("failing", "triggered"),
    "incident.reopened": ("failing", "triggered"),
    "incident.acknowledged": ("info", "acknowledged"),
    "incident.resolved": ("ok", "resolved"),
    "incident.priority_updated": ("failing", "priority_updated"),
}


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json()
    event = require(body, "event", dict)
    event_type = require(event, "event_type", str, "event")
    if event_type not in _EVENTS:
        return []  # pagey.ping, annotations, reassignments...: nothing for the timeline
    state, action = _EVENTS[event_type]
    incident = require(event, "data", dict, "event")
    status = optional(incident, "status", str, "event.data")
    if event_type == "incident.priority_updated" and status == "resolved":
        return []  # re-prioritising a closed incident must not reopen it
    service = require(
        require(incident, "service", dict, "event.data"), "summary", str, "event.data.service"
    )
    if not service:
        raise MappingError("event.data.service.summary: empty")
    occurred = parse_time(event.get("occurred_at"))
    priority = optional(incident.get("priority"), "summary", str, "event.data.priority")
    urgency = optional(incident, "urgency", str, "event.data")
    number = incident.get("number")
    title = optional(incident, "title", str, "event.data") or ""
    label = f"PagerDuty incident #{number}" if number is not None else "PagerDuty incident"
    verb = {"priority_updated": "priority changed"}.get(action, action)
    summary = clip(f"{label} {verb}" + (f": {title}" if title else ""))
    html_url = optional(incident, "html_url", str, "event.data")
    attributes = {
        "incident_id": optional(incident, "id", str, "event.data"),
        "incident_number": str(number) if number is not None else None,
        "event_type": event_type,
        "event_id": optional(event, "id", str, "event"),
        "urgency": urgency,
        "priority": priority,
    }
    return [
        Signal(
            source=delivery.source,
            kind="alert",
            subject=service,
            service=service,
            state=state,
            severity=severity_from(priority, urgency),
            occurred_at=occurred or delivery.received_at,
            notified_at=delivery.received_at,
            time_source="source" if occurred else "receipt",
            summary=summary,
            action=action,
            links=(Link(url=html_url, title=label),) if html_url else (),
            attributes=tuple(sorted((k, v) for k, v in attributes.items() if v)),
        )
    ]

