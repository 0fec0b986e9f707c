"""Gatus endpoints and the custom alerting provider.

What the model follows (TwiN/gatus ``watchdog/endpoint.go``, ``watchdog/alerting.go``,
``alerting/alert/alert.go``, ``alerting/provider/custom/custom.go``; README "Alerting"
and "Configuring custom alerts"):

- An endpoint is evaluated on a ticker every ``interval`` (``time.NewTicker``: a fixed
  period from the start, 30 s to 5 min here).
- ``handleAlertsToTrigger``: each failed evaluation counts ``NumberOfFailuresInARow``;
  when it reaches ``failure-threshold`` (default 3) the alert is sent with
  ``[ALERT_TRIGGERED_OR_RESOLVED]`` = TRIGGERED. While it stays triggered, a reminder is
  sent again on a failed evaluation once ``minimum-reminder-interval`` (0 = off, at least
  5 min) has passed since the last one.
- ``handleAlertsToResolve``: after ``success-threshold`` (default 2) successes in a row
  a triggered alert is resolved and, with ``send-on-resolved: true`` (as the guide sets
  it), RESOLVED is sent.
- The request is the guide's body with the placeholders replaced as text, the configured
  headers only, sent once (no retries) when the evaluation completes. No placeholder
  holds a time, so the adapter dates everything by receipt: the Report's moments are the
  receipts.

Nothing in the payload names a service: the model returns a ``[services]`` glob for its
``group/name`` subject.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from tests.fixtures import FIXTURES
from tests.scenarios.payloads import Recorded
from tests.simulation.tools.uptime_kuma import host_for, network_delay
from tests.simulation.tools.uptimerobot import exact
from tests.simulation.world import Observation, Outage, Report, ServicePlan, ms

SOURCE = "gatus"
BODY = """{
  "status": "%(status)s",
  "endpoint_name": "%(name)s",
  "endpoint_group": "%(group)s",
  "endpoint_url": "%(url)s",
  "alert_description": "healthcheck failed",
  "result_errors": "%(errors)s"
}
"""
_HEADERS = {"Content-Type": "application/json", "User-Agent": "Go-http-client/1.1"}
assert (FIXTURES / SOURCE / "triggered.json").is_file()  # the form the body follows


class Endpoint:
    def __init__(self, plan: ServicePlan, rng: random.Random) -> None:
        self.rng = rng
        self.name = f"{plan.name}-health"
        self.group = rng.choice(["core", "edge", ""])
        self.subject = f"{self.group}/{self.name}" if self.group else self.name
        self.url = f"https://{host_for(plan.name)}/health"
        self.interval = timedelta(seconds=rng.choice([30, 60, 60, 120, 300]))
        self.failure_threshold = rng.choice([1, 3, 3, 5])
        self.success_threshold = rng.choice([1, 2, 2, 3])
        self.reminder = timedelta(minutes=rng.choice([0, 0, 5, 30]))

    def send(self, resolved: bool, sent_at: datetime, errors: str = "") -> Recorded:
        body = BODY % {"status": "RESOLVED" if resolved else "TRIGGERED", "name": self.name,
                       "group": self.group, "url": self.url, "errors": errors}
        key = f"gatus-{self.subject}-{self.rng.getrandbits(64):016x}"
        return Recorded(SOURCE, ms(sent_at + network_delay(self.rng)), dict(_HEADERS),
                        body.encode(), key=key)


def observe(plan: ServicePlan, rng: random.Random) -> Observation:
    endpoint = Endpoint(plan, rng)
    seen = Observation(services={plan.name: [exact(endpoint.subject)]})
    phase = plan.begin + timedelta(milliseconds=rng.randrange(
        int(endpoint.interval.total_seconds() * 1000)))
    for outage in plan.outages:
        _around(endpoint, outage, phase, plan.end, seen)
    return seen


def _around(endpoint: Endpoint, outage: Outage, phase: datetime, end_of_world: datetime,
            seen: Observation) -> None:
    rng = endpoint.rng
    step = endpoint.interval
    tick = phase + step * -(-(outage.start - phase) // step)  # first evaluation in it
    failures = successes = 0
    trigger: Recorded | None = None
    last_sent: datetime | None = None
    while tick < end_of_world:
        done = tick + timedelta(milliseconds=rng.randint(20, 10000))  # the evaluation
        if outage.start <= tick < outage.end:
            failures, successes = failures + 1, 0
            errors = rng.choice([
                f'Get \\"{endpoint.url}\\": context deadline exceeded',
                "condition [STATUS] == 200 failed", "dial tcp: connection refused"])
            if trigger is None and failures >= endpoint.failure_threshold:
                trigger = endpoint.send(False, done, errors)
                seen.deliveries.append(trigger)
                last_sent = done
            elif (trigger is not None and endpoint.reminder and last_sent is not None
                  and done - last_sent >= endpoint.reminder):
                seen.deliveries.append(endpoint.send(False, done, errors))  # a reminder
                last_sent = done
        else:
            successes += 1
            if trigger is None:
                return  # never triggered: nothing to resolve, nothing sent
            if successes >= endpoint.success_threshold:
                resolved = endpoint.send(True, done)
                seen.deliveries.append(resolved)
                seen.reports.append(Report(outage=outage, monitor=endpoint.subject,
                                           started=trigger.received_at,
                                           detected=trigger.received_at,
                                           resolved=resolved.received_at))
                return
        tick += step


MODELS = {"gatus": observe}
