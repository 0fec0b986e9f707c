"""Sentry: integration-platform webhooks (an internal integration's issue and alerts).

Documented in getsentry/sentry-docs, ``docs/organization/integrations/integration-
platform/webhooks.mdx`` (https://docs.sentry.io/organization/integrations/integration-
platform/webhooks/): headers ``Request-ID``, ``Sentry-Hook-Resource``,
``Sentry-Hook-Timestamp`` (Unix seconds at send time, sentry
``src/sentry/sentry_apps/api/serializers/app_platform_event.py``) and
``Sentry-Hook-Signature`` (checked before this adapter runs); the body is ``{"action",
"installation": {"uuid"}, "data", "actor"}``. By resource:

- ``event_alert`` (webhooks/issue-alerts.mdx), action ``triggered``: an issue alert rule
  fired on ``data.event`` → ``failing`` at the event's ``datetime`` (else
  ``timestamp``); subject the issue (``data.event.issue_id``).
- ``issue`` (webhooks/issues.mdx): ``created`` → ``failing`` at ``firstSeen``;
  ``unresolved`` (regressed, escalating) → ``failing`` at ``lastSeen``; ``resolved`` →
  ``ok``, at receipt (the issue carries no resolution time); ``assigned`` (names a
  person) and ``archived`` (silenced, not fixed: only ``ok`` recovers, rule 3) → nothing.
- ``metric_alert`` (webhooks/metric-alerts.mdx): ``critical`` → ``failing`` (P1) at the
  incident's ``date_started``; ``warning`` → ``warning`` (the rule's warning threshold,
  a risk: TIMELINE.md rule 6); ``resolved`` → ``ok`` at ``date_closed``, else receipt.
  A resolution carries no start: a metric incident that only ever warned is closed the
  same way, and must open nothing (rule 6). Subject: the alert rule's name.
- ``installation`` (created/deleted), ``comment``, ``error`` and anything else → nothing.

Issue subjects are ``Sentry issue <id>`` (the id is all an issue alert names); the
project slug is the service hint: ``data.issue.project.slug``, or, for an event, the
project in the event's API URL (``/api/0/projects/<org>/<project>/events/<id>/``).
Severity: the issue's or event's ``level`` (fatal → P1, error → P2, warning → P3,
info → P4); metric alerts, critical → P1. ``notified_at``: ``Sentry-Hook-Timestamp``
(whole seconds), else receipt.
``actor``, ``assignedTo``, ``user`` and event tags are never read: they name people.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ingest.delivery import Delivery, MappingError
from ingest.signals import Link, Severity, Signal, State, TimeSource, format_time
from ingest.sources._common import (
    clip,
    from_epoch,
    http_url,
    no_people,
    optional,
    parse_time,
    require,
    severity_from,
)

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

SOURCE = "sentry"
RESOURCE_HEADER = "sentry-hook-resource"
TIMESTAMP_HEADER = "sentry-hook-timestamp"
_EVENT_PROJECT = re.compile(r"/projects/[^/]+/(?P<project>[^/]+)/events/")
_ISSUE_ACTIONS: dict[str, tuple[State, str, str]] = {
    "created": ("failing", "triggered", "firstSeen"),
    "unresolved": ("failing", "triggered", "lastSeen"),
    "resolved": ("ok", "resolved", ""),
}
_METRIC_SEVERITY: dict[str, Severity] = {"critical": "P1", "warning": "P3"}
_METRIC_ACTIONS: dict[str, tuple[State, str]] = {
    "critical": ("failing", "triggered"),
    "warning": ("warning", "triggered"),
    "resolved": ("ok", "resolved"),
}


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json()
    if not isinstance(body, dict):
        raise MappingError("body: expected an object")
    resource = (delivery.header(RESOURCE_HEADER) or "").strip()
    action = optional(body, "action", str) or ""
    if resource == "event_alert":
        return [_event_alert(delivery, body)]
    if resource == "issue":
        return _issue(delivery, body, action)
    if resource == "metric_alert":
        return _metric_alert(delivery, body, action)
    return []  # installation, comment, error, seer...: nothing for the timeline


def sent_at(delivery: Delivery) -> datetime | None:
    """``Sentry-Hook-Timestamp``: Unix seconds when Sentry sent the request."""
    raw = (delivery.header(TIMESTAMP_HEADER) or "").strip()
    return from_epoch(raw) if raw.isdigit() else None


def _event_alert(delivery: Delivery, body: dict[str, Any]) -> Signal:
    data = require(body, "data", dict)
    event = require(data, "event", dict, "data")
    issue_id = _ident(event.get("issue_id")) or _ident(event.get("group_id"))
    if not issue_id:
        raise MappingError("data.event.issue_id: missing")
    project = _project_from_url(optional(event, "url", str, "data.event"))
    occurred = parse_time(event.get("datetime")) or parse_time(event.get("timestamp"))
    title = optional(event, "title", str, "data.event") or ""
    rule = optional(data, "triggered_rule", str, "data") or ""
    summary = f"{title} (alert rule {rule})" if rule else title
    facts = {"issue_id": issue_id, "event_id": optional(event, "event_id", str, "data.event"),
             "alert_rule": rule or None, "resource": "event_alert"}
    return _signal(delivery, subject=_issue_subject(issue_id), service=project,
                   state="failing", action="triggered", occurred=occurred,
                   severity=_level(event), summary=summary or f"Sentry issue {issue_id}",
                   link=optional(event, "web_url", str, "data.event"), facts=facts)


def _issue(delivery: Delivery, body: dict[str, Any], action: str) -> list[Signal]:
    if action not in _ISSUE_ACTIONS:
        return []  # assigned, archived, ignored: nobody said it works again
    state, verb, time_key = _ISSUE_ACTIONS[action]
    issue = require(require(body, "data", dict), "issue", dict, "data")
    issue_id = _ident(issue.get("id"))
    if not issue_id:
        raise MappingError("data.issue.id: missing")
    project_data = optional(issue, "project", dict, "data.issue") or {}
    project = optional(project_data, "slug", str, "data.issue.project") or None
    short_id = optional(issue, "shortId", str, "data.issue")
    occurred = parse_time(issue.get(time_key)) if time_key else None
    title = optional(issue, "title", str, "data.issue") or ""
    facts = {"issue_id": issue_id, "short_id": short_id, "resource": "issue",
             "issue_action": action,
             "substatus": optional(issue, "substatus", str, "data.issue")}
    return [_signal(delivery, subject=_issue_subject(issue_id), service=project,
                    state=state, action=verb, occurred=occurred, severity=_level(issue),
                    summary=f"{short_id or 'Sentry issue'} {action}: {title}",
                    link=optional(issue, "web_url", str, "data.issue")
                    or optional(issue, "permalink", str, "data.issue"), facts=facts)]


def _metric_alert(delivery: Delivery, body: dict[str, Any], action: str) -> list[Signal]:
    if action not in _METRIC_ACTIONS:
        return []
    state, verb = _METRIC_ACTIONS[action]
    data = require(body, "data", dict)
    incident = require(data, "metric_alert", dict, "data")
    rule = require(incident, "alert_rule", dict, "data.metric_alert")
    name = (optional(rule, "name", str, "data.metric_alert.alert_rule") or "").strip()
    if not name:
        raise MappingError("data.metric_alert.alert_rule.name: missing")
    projects = rule.get("projects")
    project = (projects[0] if isinstance(projects, list) and len(projects) == 1
               and isinstance(projects[0], str) else None)
    if action == "resolved":
        occurred = parse_time(incident.get("date_closed"))
    else:
        occurred = parse_time(incident.get("date_started")) or parse_time(
            incident.get("date_detected"))
    severity = _METRIC_SEVERITY.get(action)
    facts = {"alert_rule_id": _ident(rule.get("id")), "incident_id": _ident(incident.get("id")),
             "incident_identifier": _ident(incident.get("identifier")),
             "resource": "metric_alert", "metric_action": action,
             "date_detected": _time_text(incident.get("date_detected"))}
    summary = (optional(data, "description_title", str, "data") or f"{name}: {action}")
    text = optional(data, "description_text", str, "data")
    if text:
        summary += f" ({text})"
    return [_signal(delivery, subject=name, service=project, state=state, action=verb,
                    occurred=occurred, severity=severity, summary=summary,
                    link=optional(data, "web_url", str, "data"), facts=facts)]


def _signal(delivery: Delivery, *, subject: str, service: str | None, state: State,
            action: str, occurred: datetime | None, severity: Severity | None,
            summary: str, link: str | None, facts: dict[str, str | None]) -> Signal:
    time_source: TimeSource = "source"
    if occurred is None:
        occurred, time_source = delivery.received_at, "receipt"
    url = http_url(link)
    return Signal(
        source=SOURCE,
        kind="alert",
        subject=subject,
        state=state,
        occurred_at=occurred,
        notified_at=sent_at(delivery) or delivery.received_at,
        service=service,
        severity=severity,
        summary=clip(no_people(summary)),
        time_source=time_source,
        action=action,
        links=(Link(url=url, title="Sentry"),) if url else (),
        attributes=tuple((k, v) for k, v in facts.items() if v),
    )


def _issue_subject(issue_id: str) -> str:
    """One subject per Sentry issue, the same for its alert, creation and resolution:
    the event alert names the issue by id only (no short id), so the id is what they
    share; the project is the service hint, not part of the subject."""
    return f"Sentry issue {issue_id}"


def _project_from_url(url: str | None) -> str | None:
    found = _EVENT_PROJECT.search(url or "")
    return found.group("project") if found else None


def _level(item: dict[str, Any]) -> Severity | None:
    return severity_from(item.get("level"))


def _ident(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str) and str(value).strip():
        return str(value).strip()
    return None


def _time_text(value: Any) -> str | None:
    parsed = parse_time(value) if isinstance(value, str) else None
    return format_time(parsed) if parsed else None
