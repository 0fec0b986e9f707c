"""Checkly API checks and their "Webhook" alert channel.

What the model follows (checklyhq.com/docs: "Alert states" / alert-states.md, "Retries"
/ retries.md, "Alert settings" / alert-settings.md, "Webhook integrations", as in
tests/fixtures/checkly):

- A check runs every ``frequency`` (1, 5 or 10 min here) from a fixed phase. A failing
  run is retried once ("fixed" retry strategy, a few seconds later, from another
  location) before it counts as failed; the result that counts is the retry's, and its
  ``STARTED_AT`` is the retry's start.
- Threshold alerting, "alert after N failures" (1 to 3): ``ALERT_FAILURE`` is sent when
  the N-th failed run in a row completes, with that run's ``STARTED_AT``
  (alert-states.md: ✅ → ❌ "send directly, if threshold is alert after 1 failure").
- Some outages begin slow before they fail: the first run in them is degraded
  (``ALERT_DEGRADED``, a warning), and the first hard failure after it escalates at once,
  whatever the threshold (``ALERT_DEGRADED_FAILURE``).
- The first passing run after a failure alert sends ``ALERT_RECOVERY`` ("send
  directly"); after a degraded alert that never failed, ``ALERT_DEGRADED_RECOVERY``.
- The body is the template of docs/sources/checkly.md, signed with the webhook secret
  (``tests.helpers.signed_headers``); the check carries a ``service:`` tag, so no
  ``[services]`` glob is needed.

Not modelled: reminders (their ``ALERT_TYPE`` is not documented) and webhook retries
(Checkly retries only answers above 399; Hindsight answers 202).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tests.fixtures import FIXTURES
from tests.scenarios.payloads import Recorded
from tests.simulation.tools.uptime_kuma import host_for, network_delay
from tests.simulation.world import Observation, Outage, Report, ServicePlan, ms

SOURCE = "checkly"
LOCATIONS = ("Frankfurt", "N. Virginia", "Ireland", "Singapore", "São Paulo")


def _template() -> tuple[dict[str, str], dict[str, Any]]:
    raw = orjson.loads((FIXTURES / SOURCE / "failure.json").read_bytes())
    return dict(raw["headers"]), raw["body"]


_HEADERS, _BODY = _template()


def iso_ms(value: datetime) -> str:
    """``STARTED_AT`` as Checkly renders it: ISO 8601, milliseconds, ``Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Check:
    def __init__(self, plan: ServicePlan, rng: random.Random) -> None:
        self.rng = rng
        self.service = plan.name
        self.name = f"{plan.name} API check"
        self.id = str(uuid.UUID(int=rng.getrandbits(128)))
        self.url = f"https://{host_for(plan.name)}/api/health"
        self.frequency = rng.choice([60, 60, 300, 600])
        self.threshold = rng.choice([1, 1, 2, 3])
        self.retry_after = rng.uniform(5, 20)

    def alert(self, alert_type: str, run_start: datetime, sent_at: datetime,
              error: str = "") -> Recorded:
        result = str(uuid.UUID(int=self.rng.getrandbits(128)))
        titles = {"ALERT_FAILURE": "has failed", "ALERT_DEGRADED_FAILURE": "has failed",
                  "ALERT_RECOVERY": "has recovered", "ALERT_DEGRADED_RECOVERY": "has recovered",
                  "ALERT_DEGRADED": "is degraded"}
        body = {**_BODY, "check_name": self.name, "check_id": self.id, "alert_type": alert_type,
                "alert_title": f'Check "{self.name}" {titles[alert_type]}',
                "check_result_id": result, "check_error_message": error,
                "response_time": str(self.rng.randint(80, 30000)),
                "run_location": self.rng.choice(LOCATIONS),
                "result_link": f"https://app.checklyhq.com/checks/{self.id}/check-sessions/{result}",
                "started_at": iso_ms(run_start), "group_name": "",
                "tags": [f"service:{self.service}", "production"]}
        key = f"checkly-{self.id}-{self.rng.getrandbits(64):016x}"
        return Recorded(SOURCE, ms(sent_at + network_delay(self.rng)), dict(_HEADERS),
                        orjson.dumps(body), key=key)


def observe(plan: ServicePlan, rng: random.Random) -> Observation:
    check = Check(plan, rng)
    seen = Observation()
    step = timedelta(seconds=check.frequency)
    phase = plan.begin + timedelta(milliseconds=rng.randrange(check.frequency * 1000))
    for outage in plan.outages:
        _around(check, outage, phase, step, plan.end, seen)
    return seen


def _broken(outage: Outage, at: datetime) -> bool:
    return outage.start <= at < outage.end


def _around(check: Check, outage: Outage, phase: datetime, step: timedelta,
            end_of_world: datetime, seen: Observation) -> None:
    rng = check.rng
    slow_first = rng.random() < 0.3
    run = phase + step * -(-(outage.start - phase) // step)  # first scheduled run in it
    failures, degraded_sent, first = 0, False, True
    failing: Recorded | None = None
    while run < end_of_world:
        duration = timedelta(milliseconds=rng.randint(150, 25000))
        # A failing run is retried from another location; the retry's result counts.
        result = ms(run)
        if _broken(outage, run) and not (first and slow_first):
            result = ms(run + timedelta(seconds=check.retry_after))
        if not _broken(outage, result):  # passing: the first passing result after it
            if failing is not None or degraded_sent:
                kind = "ALERT_RECOVERY" if failing is not None else "ALERT_DEGRADED_RECOVERY"
                seen.deliveries.append(check.alert(kind, result, result + duration))
                if failing is not None:
                    seen.reports.append(Report(
                        outage=outage, monitor=check.name,
                        started=datetime.fromisoformat(
                            orjson.loads(failing.body)["started_at"].replace("Z", "+00:00")),
                        detected=failing.received_at, resolved=result))
            return
        if first and slow_first:  # slow, not down: degraded (sent at once at threshold 1)
            if check.threshold == 1:
                degraded_sent = True
                seen.deliveries.append(check.alert("ALERT_DEGRADED", result,
                                                   result + duration))
        elif failing is None:
            failures += 1
            if degraded_sent or failures >= check.threshold:
                kind = "ALERT_DEGRADED_FAILURE" if degraded_sent else "ALERT_FAILURE"
                failing = check.alert(kind, result, result + duration, error=rng.choice([
                    "Response time exceeded max response time of 20000ms",
                    "Assertion failed: status code 503 is not 200",
                    "connect ECONNREFUSED"]))
                seen.deliveries.append(failing)
        first = False
        run += step


MODELS = {"checkly": observe}
