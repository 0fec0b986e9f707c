"""Azure Monitor alerts through an action group's webhook, in the common alert schema.

Documented at learn.microsoft.com/azure/azure-monitor/alerts/alerts-common-schema
(MicrosoftDocs/azure-monitor-docs ``articles/azure-monitor/alerts/alerts-common-schema.md``:
``schemaId`` "azureMonitorCommonAlertSchema", ``data.essentials`` and
``data.alertContext`` per monitoring service) and ``alerts-payload-samples.md``; the
action group's webhook and its retries in ``action-groups.md`` ("Webhook").

One signal per delivery: an action group sends one alert instance per request.

- state: ``essentials.monitorCondition`` ``Fired`` → ``failing``, ``Resolved`` → ``ok``
  ("When the underlying condition that caused the alert to fire clears, the monitor
  condition is set to Resolved"). Stateless alerts (activity log alerts, stateless log
  search alerts) are only ever Fired: their incident is resolved by hand.
- occurred_at: ``firedDateTime`` for a fired alert; ``resolvedDateTime`` for a resolved
  one, which also carries ``started_at`` = ``firedDateTime`` (a recovery that knows its
  start: one first seen resolved is a failing period seen after the fact, TIMELINE.md
  rule 4). The docs say ``resolvedDateTime`` is "currently only applicable for metric
  alerts": without it, the receipt, said so (``time_source``). Times are UTC; the few
  samples written without a zone are read as UTC.
- notified_at: the receipt (the payload has no send time).
- subject: the alert rule on its target resources and the dimensions that split it
  (``essentials.alertRule``, the resource names of ``alertTargetIDs``, lower-cased as
  Azure Resource Manager names are case-insensitive, and the condition's
  ``dimensions``), e.g. ``High CPU on vm-web-1 {Computer=web-1}``. ``alertId`` names one
  alert *instance* (a new one each time the rule fires again), so it is an attribute,
  not the subject; the rule, resource and dimensions are what stays the same between a
  firing and its resolution and from one firing to the next.
- severity: ``Sev0`` → P1, ``Sev1`` → P2, ``Sev2`` → P3, ``Sev3`` and ``Sev4`` → P4
  (Azure names them Critical, Error, Warning, Informational and Verbose).
- service: the rule's custom properties (``customProperties``, or the alert context's
  ``properties``) ``service`` or ``app``; else the subject.
- kind: ``uptime`` for availability (web) tests (``conditionType``
  ``WebtestLocationAvailabilityCriteria``), else ``alert``.
- The action group's "Test" sends the documented sample alerts
  (``alerts-common-schema-test-action-definitions.md``: "All the details and links ...
  are from a sample reference set"), all in the placeholder subscription
  ``11111111-1111-1111-1111-111111111111``; such a delivery maps to no signals.

Never read: the activity log's ``caller`` and ``claims`` (they name people), search
results.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ingest.delivery import Delivery, MappingError
from ingest.signals import Kind, Link, Severity, Signal, State, TimeSource
from ingest.sources._common import (
    clip,
    http_url,
    no_people,
    optional,
    parse_time,
    require,
    safe_labels,
    service_from_labels,
)

# What ``parse`` makes of a delivery is stored with it; bump this whenever its output
# changes, so a rebuild re-parses what older versions stored (sources/__init__.py).
ADAPTER_VERSION = 1

SOURCE = "azure-monitor"
SCHEMA_ID = "azureMonitorCommonAlertSchema"
# The subscription of every sample the action group's Test sends.
TEST_SUBSCRIPTION = "11111111-1111-1111-1111-111111111111"
SEVERITIES: dict[str, Severity] = {"sev0": "P1", "sev1": "P2", "sev2": "P3", "sev3": "P4",
                                   "sev4": "P4"}
_STATES: dict[str, State] = {"fired": "failing", "resolved": "ok"}
WEBTEST = "WebtestLocationAvailabilityCriteria"


def parse(delivery: Delivery) -> list[Signal]:
    body = delivery.json()
    if not isinstance(body, dict):
        raise MappingError("body: expected an object")
    schema = body.get("schemaId")
    if schema != SCHEMA_ID:
        raise MappingError(f"schemaId: expected {SCHEMA_ID!r} (enable the common alert "
                           "schema on the action group's webhook)")
    data = require(body, "data", dict)
    essentials = require(data, "essentials", dict, "data")
    alert_id = optional(essentials, "alertId", str, "data.essentials") or ""
    if alert_id.lower().startswith(f"/subscriptions/{TEST_SUBSCRIPTION}/"):
        return []  # the action group's Test: a documented sample, no real alert
    rule = require(essentials, "alertRule", str, "data.essentials").strip()
    if not rule:
        raise MappingError("data.essentials.alertRule: empty")
    condition = require(essentials, "monitorCondition", str, "data.essentials")
    state = _STATES.get(condition.strip().lower())
    if state is None:
        raise MappingError(f"data.essentials.monitorCondition: unknown condition "
                           f"{condition[:40]!r}")
    context = data.get("alertContext") if isinstance(data.get("alertContext"), dict) else {}
    criteria = _criteria(context)
    dimensions = _dimensions(context, criteria)
    fired = parse_time(essentials.get("firedDateTime"))
    occurred: datetime | None
    started: datetime | None = None
    if state == "failing":
        occurred = fired
    else:
        occurred, started = parse_time(essentials.get("resolvedDateTime")), fired
    time_source: TimeSource = "source"
    if occurred is None:
        occurred, time_source = delivery.received_at, "receipt"
    properties: dict[str, Any] = {}
    for bag in (context.get("properties"), data.get("customProperties")):
        if isinstance(bag, dict):
            properties.update({str(k): v for k, v in bag.items() if v is not None})
    severity_word = optional(essentials, "severity", str, "data.essentials") or ""
    return [Signal(
        source=SOURCE,
        kind=_kind(context, criteria),
        subject=_subject(rule, essentials, dimensions),
        service=service_from_labels(properties),
        state=state,
        occurred_at=occurred,
        notified_at=delivery.received_at,
        severity=SEVERITIES.get(severity_word.strip().lower()),
        summary=_summary(rule, essentials, criteria),
        time_source=time_source,
        started_at=started,
        links=_links(essentials, context, criteria),
        labels=safe_labels({**properties, **dimensions}),
        attributes=_attributes(essentials, criteria, context),
    )]


def _criteria(context: dict[str, Any]) -> list[dict[str, Any]]:
    condition = context.get("condition")
    all_of = condition.get("allOf") if isinstance(condition, dict) else None
    return [c for c in all_of if isinstance(c, dict)] if isinstance(all_of, list) else []


def _dimensions(context: dict[str, Any], criteria: list[dict[str, Any]]) -> dict[str, str]:
    """The dimension values that split the rule into this alert: each criterion's
    ``dimensions`` (metric and log search v2 alerts), or the log search v1 context's
    ``Dimensions``; ``[{"name": ..., "value": ...}]``, the first value per name."""
    lists = [c.get("dimensions") for c in criteria] + [context.get("Dimensions")]
    found: dict[str, str] = {}
    for items in lists:
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                found.setdefault(item["name"], str(item.get("value", "")))
    return found


def _subject(rule: str, essentials: dict[str, Any], dimensions: dict[str, str]) -> str:
    targets = essentials.get("alertTargetIDs")
    names = sorted({t.rstrip("/").rsplit("/", 1)[-1].lower()
                    for t in (targets if isinstance(targets, list) else [])
                    if isinstance(t, str) and t.strip("/")})
    subject = rule + (f" on {', '.join(names)}" if names else "")
    if dimensions:
        subject += " {" + ", ".join(f"{k}={v}" for k, v in sorted(dimensions.items())) + "}"
    return subject


def _kind(context: dict[str, Any], criteria: list[dict[str, Any]]) -> Kind:
    if context.get("conditionType") == WEBTEST or any(c.get("webTestName") for c in criteria):
        return "uptime"
    return "alert"


def _summary(rule: str, essentials: dict[str, Any], criteria: list[dict[str, Any]]) -> str:
    description = essentials.get("description")
    if isinstance(description, str) and description.strip():
        return clip(no_people(f"{rule}: {description}"))
    for criterion in criteria:
        metric = criterion.get("metricName") or criterion.get("webTestName")
        if metric:
            text = f"{rule}: {metric} {criterion.get('operator') or ''} " \
                   f"{criterion.get('threshold') or ''}".rstrip()
            if criterion.get("metricValue") is not None:
                text += f" (value {criterion['metricValue']})"
            return clip(no_people(" ".join(text.split())))
    return clip(rule)


def _links(essentials: dict[str, Any], context: dict[str, Any],
           criteria: list[dict[str, Any]]) -> tuple[Link, ...]:
    links: list[Link] = []
    investigate = http_url(essentials.get("investigationLink"))
    if investigate:
        links.append(Link(investigate, "Investigate in Azure Monitor"))
    for source in (*criteria, context):
        search = http_url(source.get("linkToFilteredSearchResultsUI")
                          or source.get("LinkToFilteredSearchResultsUI")
                          or source.get("linkToSearchResultsUI")
                          or source.get("LinkToSearchResults"))
        if search:
            links.append(Link(search, "Search results"))
            break
    return tuple(links)


def _attributes(essentials: dict[str, Any], criteria: list[dict[str, Any]],
                context: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    values = {
        "alert_id": essentials.get("alertId"),
        "monitoring_service": essentials.get("monitoringService"),
        "signal_type": essentials.get("signalType"),
        "azure_severity": essentials.get("severity"),
        "monitor_condition": essentials.get("monitorCondition"),
        "condition_type": context.get("conditionType"),
    }
    condition = context.get("condition")
    if isinstance(condition, dict):
        values["window_start"] = condition.get("windowStartTime")
        values["window_end"] = condition.get("windowEndTime")
        values["window_size"] = condition.get("windowSize")
    if criteria:
        first = criteria[0]
        values["metric"] = first.get("metricName") or first.get("webTestName")
        values["threshold"] = first.get("threshold")
        values["value"] = first.get("metricValue")
    return tuple(sorted((k, clip(str(v), 300)) for k, v in values.items()
                        if v is not None and str(v) != ""))
