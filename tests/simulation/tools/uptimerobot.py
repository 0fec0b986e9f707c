"""UptimeRobot HTTP monitors and their "Webhook" alert contact.

What the model follows (help.uptimerobot.com "Webhook Integration", the alert contact's
variables, as in tests/fixtures/uptimerobot):

- A monitor is checked every ``interval`` (5 min on the free plan, 1 min or 30 s on paid
  ones). A failed check is re-verified from other locations before the monitor is marked
  down (seconds); then a down alert (``*alertType*`` 1) is sent with ``*alertDateTime*``,
  the Unix time (whole seconds) the monitor went down.
- The first check that passes again sends an up alert (``*alertType*`` 2) with its own
  ``*alertDateTime*`` and ``*alertDuration*``: the seconds the monitor was down (the two
  alert times apart), so the up alert carries its own start.
- SSL monitoring sends certificate-expiry reminders (``*alertType*`` 3, with
  ``*sslExpiryDate*`` and ``*sslExpiryDaysLeft*``) 30, 14, 7 and 1 days before the
  certificate's expiry: warnings, never an incident (TIMELINE.md rule 6).
- The body is "Send as JSON" with the variables as keys (every value a string, as the
  substitution produces) or "Send default variables as POST parameters" (form-encoded).

Nothing in the payload names a service, so the model returns ``[services]`` names for its
monitor and its certificate's host.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson

from tests.fixtures import FIXTURES
from tests.scenarios.payloads import Recorded, rfc3339
from tests.simulation.tools.uptime_kuma import host_for, network_delay
from tests.simulation.world import Observation, Report, ServicePlan, ms

SOURCE = "uptimerobot"
REMINDER_DAYS = (30, 14, 7, 1)


def _template() -> dict[str, Any]:
    raw = orjson.loads((FIXTURES / SOURCE / "down.json").read_bytes())
    body: dict[str, Any] = raw["body"]
    return body


_TEMPLATE = _template()


def exact(name: str) -> str:
    """A ``[services]`` pattern that matches ``name`` only (glob characters escaped)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def epoch_seconds(value: datetime) -> int:
    return int(value.timestamp())


class RobotMonitor:
    def __init__(self, plan: ServicePlan, rng: random.Random) -> None:
        self.rng = rng
        self.name = f"{plan.name} storefront"
        self.host = host_for(plan.name)
        self.url = f"https://{self.host}/"
        self.id = str(rng.randint(780_000_000, 799_999_999))
        self.interval = rng.choice([30, 60, 300, 300])
        self.form = rng.random() < 0.4

    def alert(self, sent_at: datetime, **values: str) -> Recorded:
        body = {**_TEMPLATE, "monitorID": self.id, "monitorURL": self.url,
                "monitorFriendlyName": self.name, **values}
        if self.form:
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            raw = urlencode(body).encode()
        else:
            headers = {"Content-Type": "application/json"}
            raw = orjson.dumps(body)
        key = f"robot-{self.id}-{self.rng.getrandbits(64):016x}"
        return Recorded(SOURCE, ms(sent_at + network_delay(self.rng)), headers, raw, key=key)


def observe(plan: ServicePlan, rng: random.Random) -> Observation:
    monitor = RobotMonitor(plan, rng)
    seen = Observation(services={plan.name: [exact(monitor.name), exact(monitor.host)]})
    step = timedelta(seconds=monitor.interval)
    phase = plan.begin + timedelta(milliseconds=rng.randrange(monitor.interval * 1000))
    for outage in plan.outages:
        first = phase + step * -(-(outage.start - phase) // step)  # first check in it
        if first >= outage.end:
            continue  # over between two checks: UptimeRobot never saw it
        up = phase + step * -(-(outage.end - phase) // step)  # first check after it
        went_down, came_up = epoch_seconds(first), epoch_seconds(up)
        verify = timedelta(seconds=rng.uniform(2, 30))
        down = monitor.alert(
            first + verify, alertType="1", alertTypeFriendlyName="Down",
            alertDetails=rng.choice(["Connection Timeout", "HTTP 503 - Service Unavailable",
                                     "HTTP 502 - Bad Gateway"]),
            alertDuration="", alertDateTime=str(went_down), sslExpiryDate="",
            sslExpiryDaysLeft="")
        recovered = monitor.alert(
            up + timedelta(seconds=rng.uniform(1, 10)), alertType="2",
            alertTypeFriendlyName="Up", alertDetails="HTTP 200 - OK",
            alertDuration=str(came_up - went_down), alertDateTime=str(came_up),
            sslExpiryDate="", sslExpiryDaysLeft="")
        seen.deliveries += [down, recovered]
        seen.reports.append(Report(
            outage=outage, monitor=monitor.name,
            started=datetime.fromtimestamp(went_down, UTC),
            detected=down.received_at,
            resolved=datetime.fromtimestamp(came_up, UTC),
        ))
    if rng.random() < 0.5:
        _ssl_reminders(plan, monitor, rng, seen)
    return seen


def _ssl_reminders(plan: ServicePlan, monitor: RobotMonitor, rng: random.Random,
                   seen: Observation) -> None:
    """Expiry reminders of a certificate that expires after the world ends (so every
    reminder is a warning with at least a day left)."""
    expires = plan.end + timedelta(days=1, seconds=rng.randrange(20 * 86400))
    for days in REMINDER_DAYS:
        at = expires - timedelta(days=days) - timedelta(seconds=rng.randrange(1, 3600))
        if not plan.begin <= at < plan.end:
            continue
        left = (expires - at).days
        seen.deliveries.append(monitor.alert(
            at + timedelta(seconds=rng.uniform(0.2, 5)), alertType="3",
            alertTypeFriendlyName="SSL Expiry",
            alertDetails=f"SSL certificate expires in {left} days", alertDuration="",
            alertDateTime=str(epoch_seconds(at)), sslExpiryDate=rfc3339(expires),
            sslExpiryDaysLeft=str(left)))


MODELS = {"uptimerobot": observe}
