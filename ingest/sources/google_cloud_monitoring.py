"""Google Cloud Monitoring: the webhook notification channel, schema version 1.2.

Documented at cloud.google.com/monitoring/support/notification-options ("Webhooks":
the schema 1.2 example with ``incident.incident_id``, ``scoping_project_id``,
``started_at``/``ended_at`` as Unix seconds, ``state`` ``open``/``closed``,
``policy_name``, ``condition_name``, ``resource``, ``metric``, ``summary``, ``severity``,
``observed_value``, ``threshold_value``, ``policy_user_labels``, ``url``; the example is
quoted in target/goalert ``integrationkey/gcp``), and cloud.google.com/monitoring/alerts/
concepts-indepth ("Incidents", auto-close, repeat notifications).

One signal per delivery: Monitoring notifies once per incident state change (and again
on a repeat notification), and an incident is one time series of one condition.

- state: ``open`` → ``failing``, ``closed`` → ``ok`` (case ignored: the test message
  writes ``OPEN``). An incident Monitoring closes on its own (no data for the policy's
  auto-close duration, 7 days by default) is closed too, and counts as a recovery.
- occurred_at: ``started_at`` for an open incident; ``ended_at`` for a closed one, which
  also carries ``started_at`` (a recovery that knows its start, TIMELINE.md rule 4).
  A zero or missing time is unknown: the receipt, said so (``time_source``).
- notified_at: the receipt (no send time in the payload or headers).
- subject: the policy and condition on the time series' resource and metric labels,
  ``<policy>: <condition> on <resource display name> {label=value...}``. The
  ``incident_id`` is one incident of it (a new one each time the condition is met
  again): an attribute. The resource is ``resource_display_name``, else
  ``resource_name``, else the resource labels; metric labels distinguish time series of
  one resource.
- severity: ``incident.severity`` (``Critical`` → P1, ``Error`` → P2, ``Warning`` → P3;
  ``No severity`` → the source's default), else a ``severity``/``priority`` policy user
  label.
- service: a ``service`` or ``app`` policy user label; else the subject.
- kind: ``uptime`` for uptime checks (resource type ``uptime_url`` or an
  ``uptime_check`` metric), else ``alert``.
- The channel's "Send test notification" posts ``"version": "test"`` with a made-up
  incident (``summary`` "Test Incident", ``started_at`` 0): no signals.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ingest.delivery import Delivery, MappingError
from ingest.signals import Kind, Link, Signal, State, TimeSource
from ingest.sources._common import (
    clip,
    from_epoch,
    http_url,
    no_people,
    optional,
    require,
    safe_labels,
    service_from_labels,
    severity_from,
)

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

SOURCE = "google-cloud-monitoring"
TEST_VERSION = "test"
_STATES: dict[str, State] = {"open": "failing", "closed": "ok"}
UPTIME_RESOURCE = "uptime_url"
UPTIME_METRIC = "monitoring.googleapis.com/uptime_check/"


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json()
    if not isinstance(body, dict):
        raise MappingError("body: expected an object")
    if str(body.get("version", "")).strip().lower() == TEST_VERSION:
        return []  # "Send test notification": a made-up incident
    incident = require(body, "incident", dict)
    word = require(incident, "state", str, "incident")
    state = _STATES.get(word.strip().lower())
    if state is None:
        raise MappingError(f"incident.state: unknown state {word[:40]!r}")
    policy = optional(incident, "policy_name", str, "incident") or ""
    condition = optional(incident, "condition_name", str, "incident") or ""
    if not (policy or condition):
        raise MappingError("incident.policy_name: missing, and no condition_name")
    started = _epoch(incident, "started_at")
    occurred: datetime | None
    recovered_from: datetime | None = None
    if state == "failing":
        occurred = started
    else:
        occurred, recovered_from = _epoch(incident, "ended_at"), started
    time_source: TimeSource = "source"
    if occurred is None:
        occurred, time_source = delivery.received_at, "receipt"
    user_labels = _strings(incident.get("policy_user_labels"))
    metric = incident.get("metric") if isinstance(incident.get("metric"), dict) else {}
    resource = incident.get("resource") if isinstance(incident.get("resource"), dict) else {}
    metric_labels = _strings(metric.get("labels"))
    summary = optional(incident, "summary", str, "incident") or f"{policy} {condition}"
    url = http_url(incident.get("url"))
    return [Signal(
        source=SOURCE,
        kind=_kind(resource, metric),
        subject=_subject(policy, condition, incident, resource, metric_labels),
        service=service_from_labels(user_labels),
        state=state,
        occurred_at=occurred,
        notified_at=delivery.received_at,
        severity=severity_from(incident.get("severity"), user_labels.get("severity"),
                               user_labels.get("priority")),
        summary=clip(no_people(summary)),
        time_source=time_source,
        started_at=recovered_from,
        links=(Link(url, "Incident"),) if url else (),
        labels=safe_labels({**metric_labels, **user_labels}),
        attributes=_attributes(incident, resource, metric),
    )]


def _epoch(incident: dict[str, Any], key: str) -> datetime | None:
    value = incident.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise MappingError(f"incident.{key}: expected a Unix time")
    return from_epoch(value)


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None}


def _subject(policy: str, condition: str, incident: dict[str, Any],
             resource: dict[str, Any], metric_labels: dict[str, str]) -> str:
    what = f"{policy}: {condition}" if policy and condition else policy or condition
    shown = (optional(incident, "resource_display_name", str, "incident")
             or optional(incident, "resource_name", str, "incident") or "").strip()
    if not shown:
        labels = _strings(resource.get("labels"))
        shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    subject = what + (f" on {shown}" if shown else "")
    if metric_labels:
        subject += " {" + ", ".join(f"{k}={v}" for k, v in sorted(metric_labels.items())) + "}"
    return subject


def _kind(resource: dict[str, Any], metric: dict[str, Any]) -> Kind:
    metric_type = metric.get("type")
    if resource.get("type") == UPTIME_RESOURCE or (
            isinstance(metric_type, str) and metric_type.startswith(UPTIME_METRIC)):
        return "uptime"
    return "alert"


def _attributes(incident: dict[str, Any], resource: dict[str, Any],
                metric: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    values = {
        "incident_id": incident.get("incident_id"),
        "scoping_project_id": incident.get("scoping_project_id"),
        "policy": incident.get("policy_name"),
        "condition": incident.get("condition_name"),
        "resource_type": resource.get("type"),
        "metric_type": metric.get("type"),
        "observed_value": incident.get("observed_value"),
        "threshold_value": incident.get("threshold_value"),
        "gcp_severity": incident.get("severity"),
    }
    return tuple(sorted((k, clip(str(v), 300)) for k, v in values.items()
                        if v is not None and str(v) != ""))
