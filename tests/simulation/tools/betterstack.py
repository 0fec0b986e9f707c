"""Better Stack Uptime monitors and their incident webhook.

What the model follows:

- betterstack.com/docs/uptime/webhooks/: "You will get a POST request when a new incident
  is created, acknowledged, or resolved", the incident as in
  betterstack.com/docs/uptime/api/incidents-api-response-params/ (``started_at``,
  ``acknowledged_at``, ``acknowledged_by``, ``resolved_at``, ``resolved_by``, ``status``
  Started / Acknowledged / Resolved, ``cause``...). Each webhook repeats the whole incident
  as it is at that moment, so the resolution still carries ``started_at`` and the
  acknowledgement's own ``acknowledged_at``.
- Monitor settings (betterstack.com/docs/uptime/api/create-a-new-monitor/):
  ``check_frequency`` (30 s to 30 min; 3 min by default) and ``recovery_period``: how long
  the monitor must be up again before the incident is resolved automatically
  (``resolved_by`` "Automatically", ``resolved_at`` when that period has passed).
  ``confirmation_period`` is left at 0: the incident starts at the failing check.
- Acknowledgement: the on-call person acknowledges some minutes after being alerted, if
  the incident is still open; Better Stack then sends the acknowledged webhook with
  ``acknowledged_at`` = that moment (TIMELINE.md: acknowledged_at is the acknowledgement's
  own time; issue 10 defect 3).
- SSL expiration (monitor setting ``ssl_expiration``, days before expiry): Better Stack
  opens an incident naming the certificate (the cause wording is not documented; we use
  the fixture's) and resolves it when the certificate is renewed. It is a warning: it
  opens no incident in Hindsight, not even when its resolution arrives (TIMELINE.md rule
  6; issue 10 defect 3).

Nothing in the payload names a service: the model returns ``[services]`` names for its
monitor and the certificate's host.
"""

from __future__ import annotations

import copy
import random
from datetime import datetime, timedelta
from typing import Any

import orjson

from tests.fixtures import FIXTURES
from tests.scenarios.payloads import Recorded
from tests.simulation.tools.uptime_kuma import host_for, network_delay
from tests.simulation.tools.uptimerobot import exact
from tests.simulation.world import Observation, Report, ServicePlan, ms

SOURCE = "betterstack"
PEOPLE = ("Jordan Lee", "Sam Okafor", "Riya Patel")


def _fixture() -> tuple[dict[str, str], dict[str, Any]]:
    raw = orjson.loads((FIXTURES / SOURCE / "started.json").read_bytes())
    body: dict[str, Any] = raw["body"]
    return dict(raw["headers"]), body


_HEADERS, _TEMPLATE = _fixture()


def stamp(value: datetime | None) -> str | None:
    """The API's times: UTC, milliseconds, ``Z``."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class Incident:
    def __init__(self, monitor: StackMonitor, started: datetime, cause: str) -> None:
        self.monitor = monitor
        self.id = str(monitor.rng.randint(500_000_000, 599_999_999))
        self.started = started
        self.cause = cause
        self.acknowledged: datetime | None = None
        self.acknowledged_by: str | None = None
        self.resolved: datetime | None = None

    def webhook(self, sent_at: datetime) -> Recorded:
        body = copy.deepcopy(_TEMPLATE)
        data = body["data"]
        data["id"] = self.id
        data["relationships"]["monitor"]["data"]["id"] = self.monitor.id
        status = ("Resolved" if self.resolved else
                  "Acknowledged" if self.acknowledged else "Started")
        data["attributes"].update(
            name=self.monitor.name, url=self.monitor.url, cause=self.cause,
            started_at=stamp(self.started), acknowledged_at=stamp(self.acknowledged),
            acknowledged_by=self.acknowledged_by, resolved_at=stamp(self.resolved),
            resolved_by="Automatically" if self.resolved else None, status=status,
            response_content=None if "SSL" in self.cause else
            data["attributes"]["response_content"],
        )
        rng = self.monitor.rng
        key = f"betterstack-{self.id}-{rng.getrandbits(64):016x}"
        return Recorded(SOURCE, ms(sent_at + network_delay(rng)), dict(_HEADERS),
                        orjson.dumps(body), key=key)


class StackMonitor:
    def __init__(self, plan: ServicePlan, rng: random.Random) -> None:
        self.rng = rng
        self.name = f"{plan.name} API"
        self.host = host_for(plan.name)
        self.url = f"https://{self.host}/health"
        self.id = str(rng.randint(2_000_000, 2_999_999))
        self.frequency = rng.choice([30, 60, 180, 180])
        self.recovery = self.frequency * rng.choice([0, 1, 2])
        self.acks = rng.random() < 0.7


def observe(plan: ServicePlan, rng: random.Random) -> Observation:
    monitor = StackMonitor(plan, rng)
    seen = Observation(services={plan.name: [exact(monitor.name), exact(monitor.host)]})
    step = timedelta(seconds=monitor.frequency)
    phase = plan.begin + timedelta(milliseconds=rng.randrange(monitor.frequency * 1000))
    for outage in plan.outages:
        first = phase + step * -(-(outage.start - phase) // step)
        if first >= outage.end:
            continue  # between two checks: never seen
        up = phase + step * -(-(outage.end - phase) // step)
        incident = Incident(monitor, first, rng.choice(["Status 502", "Status 503",
                                                        "Timeout (no response in 30s)"]))
        started = incident.webhook(first + timedelta(milliseconds=rng.randint(300, 20_000)))
        failing = [started]
        resolved_at = up + timedelta(seconds=monitor.recovery)
        if monitor.acks:
            ack = started.received_at + timedelta(milliseconds=rng.randint(20_000, 1_800_000))
            if ack < resolved_at:
                incident.acknowledged, incident.acknowledged_by = ack, rng.choice(PEOPLE)
                failing.append(incident.webhook(ack + timedelta(milliseconds=rng.randint(50,
                                                                                      900))))
        incident.resolved = resolved_at
        resolution = incident.webhook(resolved_at + timedelta(milliseconds=rng.randint(300,
                                                                                    5_000)))
        seen.deliveries += [*failing, resolution]
        seen.reports.append(Report(
            outage=outage, monitor=monitor.name, started=incident.started,
            detected=min(d.received_at for d in failing), resolved=resolved_at,
            acknowledged=incident.acknowledged,
        ))
    if rng.random() < 0.5:
        _ssl_expiration(plan, monitor, rng, seen)
    return seen


def _ssl_expiration(plan: ServicePlan, monitor: StackMonitor, rng: random.Random,
                    seen: Observation) -> None:
    """An SSL expiration incident: opened ``days`` before expiry, maybe acknowledged, and
    resolved when the certificate is renewed. A warning from start to end: no Report."""
    days = rng.choice([30, 14, 7])
    opened = plan.begin + timedelta(milliseconds=rng.randrange(
        int((plan.end - plan.begin).total_seconds() * 1000) // 2))
    incident = Incident(monitor, opened, f"SSL certificate expires in {days} days")
    seen.deliveries.append(incident.webhook(opened + timedelta(milliseconds=rng.randint(300,
                                                                                     9_000))))
    renewed = opened + timedelta(milliseconds=rng.randint(3_600_000, 3 * 86_400_000))
    if rng.random() < 0.4:
        incident.acknowledged = opened + timedelta(milliseconds=rng.randint(60_000, 3_600_000))
        incident.acknowledged_by = rng.choice(PEOPLE)
        seen.deliveries.append(incident.webhook(incident.acknowledged))
    if renewed < plan.end:
        incident.resolved = renewed
        seen.deliveries.append(incident.webhook(renewed + timedelta(milliseconds=300)))


MODELS = {"betterstack": observe}
