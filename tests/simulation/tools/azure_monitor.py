"""Azure Monitor metric alert rules notifying an action group's webhook (common schema).

What the model follows:

- A metric alert rule is evaluated every *frequency* (1, 5 or 15 min) over a lookback
  *window* (``windowSize``, at least the frequency: 5, 15 or 30 min) with an aggregation:
  here the error rate's average, over its threshold once at least ``share`` of the
  window was broken (learn.microsoft.com/azure/azure-monitor/alerts/
  alerts-create-metric-alert-rule, "Check every", "Lookback period").
- Metric alerts are stateful: the alert fires at the first evaluation whose condition is
  met (``firedDateTime``, 7 fractional digits, UTC) and auto-resolves when the condition
  "isn't met for three consecutive evaluations" (alerts-overview, "Alerts and state";
  ``resolvedDateTime``). A notification goes out on each change, seconds later.
- The action group retries a failed call up to 5 times, 5, 20, 5, 40 and 5 s apart
  (action-groups.md, "Webhook retry behavior"): the same bytes again.
- The payload is the common alert schema (alerts-common-schema.md, its metric sample);
  the rule's custom properties name the service (``customProperties.service``).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson

from tests.scenarios.payloads import Recorded
from tests.simulation.tools.uptime_kuma import network_delay
from tests.simulation.world import Observation, Outage, Report, ServicePlan, ms

SOURCE = "azure-monitor"
RETRY_DELAYS = (5, 20, 5, 40, 5)
SUBSCRIPTION = "d1a2b3c4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


def azure_time(value: datetime) -> str:
    """Seven fractional digits, as Azure writes them (ms precision here)."""
    utc = value.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}0000Z"


def broken(outage: Outage, start: datetime, end: datetime) -> timedelta:
    return max(timedelta(0), min(end, outage.end) - max(start, outage.start))


def azure_monitor(plan: ServicePlan, rng: random.Random) -> Observation:
    frequency = timedelta(minutes=rng.choice([1, 5, 5, 15]))
    window = max(frequency, timedelta(minutes=rng.choice([5, 15, 30])))
    share = rng.choice([0.2, 0.5, 0.8])
    phase = plan.begin + timedelta(milliseconds=rng.randrange(int(frequency.total_seconds() * 1000)))
    rule = rng.choice(["High error rate", "5xx over budget", "Failed requests"])
    resource = f"{plan.name}-app"
    severity = rng.choice(["Sev0", "Sev1", "Sev2", "Sev3", "Sev4"])
    fails = rng.choice([0.0, 0.05, 0.2])  # share of calls that time out and are retried
    seen = Observation(services={plan.name: [f"{rule} on {resource}"]})

    def met(at: datetime, outage: Outage) -> bool:
        return broken(outage, at - window, at) >= window * share

    def send(body: bytes, at: datetime, key: str) -> Recorded:
        first = Recorded(SOURCE, ms(at + network_delay(rng)),
                         {"Content-Type": "application/json"}, body, key=key)
        seen.deliveries.append(first)
        last = first
        if rng.random() < fails:
            for delay in RETRY_DELAYS[:rng.randint(1, len(RETRY_DELAYS))]:
                last = last.retried(last.received_at + timedelta(seconds=delay))
                seen.deliveries.append(last)
        return first

    for outage in plan.outages:
        at = phase + frequency * -(-(outage.start - phase) // frequency)
        while at < outage.end + window and not met(at, outage):
            at += frequency
        if not met(at, outage):
            continue  # too short for the rule: never fired
        fired = ms(at + timedelta(milliseconds=rng.randrange(500, 20000)))
        clear = 0
        while clear < 3:
            at += frequency
            clear = 0 if met(at, outage) else clear + 1
        resolved = ms(at + timedelta(milliseconds=rng.randrange(500, 20000)))
        alert_id = f"{rng.getrandbits(128):032x}"
        bodies = []
        for condition, value in (("Fired", 37.5), ("Resolved", 0.4)):
            essentials = {
                "alertId": f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.AlertsManagement/"
                           f"alerts/{alert_id}",
                "alertRule": rule, "severity": severity, "signalType": "Metric",
                "monitorCondition": condition, "monitoringService": "Platform",
                "alertTargetIDs": [f"/subscriptions/{SUBSCRIPTION}/resourcegroups/shop/providers/"
                                   f"microsoft.web/sites/{resource}"],
                "configurationItems": [resource],
                "originAlertId": f"{SUBSCRIPTION}_shop_microsoft.insights_metricAlerts_{rule}",
                "firedDateTime": azure_time(fired)}
            if condition == "Resolved":
                essentials["resolvedDateTime"] = azure_time(resolved)
            essentials.update(description="", essentialsVersion="1.0", alertContextVersion="1.0")
            bodies.append(orjson.dumps({"schemaId": "azureMonitorCommonAlertSchema", "data": {
                "essentials": essentials,
                "alertContext": {"properties": None,
                                 "conditionType": "SingleResourceMultipleMetricCriteria",
                                 "condition": {"windowSize": f"PT{int(window.total_seconds() // 60)}M",
                                               "allOf": [{"metricName": "Http5xx",
                                                          "metricNamespace": "Microsoft.Web/sites",
                                                          "operator": "GreaterThan",
                                                          "threshold": "5",
                                                          "timeAggregation": "Average",
                                                          "dimensions": [],
                                                          "metricValue": value}]}},
                "customProperties": {"service": plan.name}}}))
        down = send(bodies[0], fired, f"azure-{alert_id}-fired")
        send(bodies[1], resolved, f"azure-{alert_id}-resolved")
        seen.reports.append(Report(outage=outage, monitor=rule, started=fired,
                                   detected=down.received_at, resolved=resolved))
    return seen


MODELS = {"azure-monitor": azure_monitor}
