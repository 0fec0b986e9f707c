"""Google Cloud Monitoring metric-threshold policies notifying a webhook channel (1.2).

What the model follows (cloud.google.com/monitoring/alerts/concepts-indepth and
cloud.google.com/monitoring/support/notification-options#webhooks):

- The condition's time series is aligned every *alignment period* (60 s, 5 min): each
  aligned point is the period's mean, over the threshold once at least ``share`` of the
  period was broken. The condition is met when every point of the *duration* (the retest
  window: 0, 1 or 5 min) is over it; then an incident opens (``started_at``, Unix
  seconds) and the channel is notified, with the documented notification latency.
- The incident closes at the first aligned point under the threshold (``ended_at``);
  "Notify on incident closure" sends the closed incident.
- Repeat notifications ("renotify", 30 min to 24 h, or off) resend the open incident:
  the same incident, the same ``started_at``.
- Auto-close (no data for the policy's auto-close duration) is not drawn: the metric
  keeps reporting during these outages.
- No delivery retries are documented for webhooks.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tests.scenarios.payloads import Recorded
from tests.simulation.tools.uptime_kuma import network_delay
from tests.simulation.world import Observation, Outage, Report, ServicePlan, ms

SOURCE = "google-cloud-monitoring"


def _overlap(outage: Outage, start: datetime, end: datetime) -> timedelta:
    return max(timedelta(0), min(end, outage.end) - max(start, outage.start))


def google_cloud_monitoring(plan: ServicePlan, rng: random.Random) -> Observation:
    period = timedelta(seconds=rng.choice([60, 60, 300]))
    duration = timedelta(seconds=rng.choice([0, 60, 300]))
    share = rng.choice([0.3, 0.6])
    renotify = rng.choice([None, timedelta(minutes=30), timedelta(hours=1)])
    project = f"{plan.name}-prod"
    policy = rng.choice(["Checkout latency", "Error ratio", "Backend 5xx"])
    condition = "p99 latency above 2s" if policy == "Checkout latency" else "ratio above 1%"
    severity = rng.choice(["Critical", "Error", "Warning", "No severity"])
    seen = Observation(services={plan.name: [f"{policy}: {condition} on {plan.name}-backend"]})

    def met(point: datetime, outage: Outage) -> bool:
        return _overlap(outage, point - period, point) >= period * share

    def body(outage_id: str, state: str, started: int, ended: int | None) -> bytes:
        incident: dict[str, Any] = {
            "incident_id": outage_id, "scoping_project_id": project,
            "scoping_project_number": 424242424242,
            "url": f"https://console.cloud.google.com/monitoring/alerting/incidents/"
                   f"{outage_id}?project={project}",
            "severity": severity, "started_at": started, "ended_at": ended, "state": state,
            "resource_id": "", "resource_name": f"{project} {plan.name}-backend",
            "resource_display_name": f"{plan.name}-backend",
            "resource_type_display_name": "Cloud Run Revision",
            "resource": {"type": "cloud_run_revision",
                         "labels": {"project_id": project, "service_name": f"{plan.name}-backend"}},
            "metric": {"type": "run.googleapis.com/request_latencies", "displayName":
                       "Request latencies", "labels": {}},
            "metadata": {"system_labels": {}, "user_labels": {}},
            "policy_name": policy, "policy_user_labels": {"team": "shop"},
            "condition_name": condition, "threshold_value": "2000",
            "observed_value": "3120.5" if state == "open" else "180.2",
            "summary": f"{policy} for {plan.name}-backend is "
                       + ("above the threshold." if state == "open" else "back to normal."),
        }
        return orjson.dumps({"incident": incident, "version": "1.2"})

    def send(raw: bytes, at: datetime, key: str) -> Recorded:
        sent = Recorded(SOURCE, ms(at + network_delay(rng)),
                        {"Content-Type": "application/json"}, raw, key=key)
        seen.deliveries.append(sent)
        return sent

    origin = plan.begin
    for outage in plan.outages:
        point = origin + period * -(-(outage.start - origin) // period)
        first_met: datetime | None = None
        opened: datetime | None = None
        while point < outage.end + period * 2:
            if met(point, outage):
                first_met = first_met or point
                if point - first_met >= duration:
                    opened = point
                    break
            else:
                first_met = None
            point += period
        if opened is None:
            continue
        while met(point, outage):
            point += period
        closed = point
        started = int(opened.timestamp()) + rng.randint(0, 30)
        ended = max(int(closed.timestamp()) + rng.randint(0, 30), started + 1)
        incident_id = f"0.{rng.getrandbits(48):012x}"
        latency = timedelta(seconds=rng.uniform(5, 90))
        down = send(body(incident_id, "open", started, None),
                    datetime.fromtimestamp(started, UTC) + latency, f"gcp-{incident_id}-open")
        if renotify is not None:
            again = datetime.fromtimestamp(started, UTC) + renotify
            while again < datetime.fromtimestamp(ended, UTC):
                send(body(incident_id, "open", started, None), again + latency,
                     f"gcp-{incident_id}-{int(again.timestamp())}")
                again += renotify
        send(body(incident_id, "closed", started, ended),
             datetime.fromtimestamp(ended, UTC) + latency, f"gcp-{incident_id}-closed")
        seen.reports.append(Report(outage=outage, monitor=policy,
                                   started=datetime.fromtimestamp(started, UTC),
                                   detected=down.received_at,
                                   resolved=datetime.fromtimestamp(ended, UTC)))
    return seen


MODELS = {"google-cloud-monitoring": google_cloud_monitoring}
