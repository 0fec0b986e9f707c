"""Pingdom uptime and transaction checks and their state change webhooks.

What the model follows (pingdom.com/resources/webhooks, "State change webhooks";
Pingdom's check settings as the API exposes them, ``resolution`` and the TMS
``interval``; the recorded deliveries in zulip/zulip zerver/webhooks/pingdom/fixtures):

- An uptime check tests every ``resolution`` minutes (1, 5 or 15 here); a transaction
  check runs every ``interval`` minutes (5, 10 or 20 here). A failed test is verified at
  once from a second probe (``first_probe``, ``second_probe``); only a confirmed failure
  changes the state to DOWN (FAILING), and the change is stamped
  ``state_changed_timestamp`` (Unix seconds) with the confirmation's time.
- The first test that passes again changes the state to UP (SUCCESS), stamped with that
  test's time; the UP webhook has an empty ``second_probe``, as Zulip's recording shows.
- State change webhooks "trigger immediately when an uptime or transaction check changes
  state": one POST per change, seconds later; no reminders, no retries. The alert policy's
  "alert after N minutes" delays people's alerts, not these webhooks.
- The check's ``service:`` tag names the service, so no ``[services]`` glob is needed.
"""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tests.fixtures import FIXTURES
from tests.scenarios.payloads import Recorded
from tests.simulation.tools.uptime_kuma import host_for, network_delay
from tests.simulation.world import Observation, Outage, Report, ServicePlan, ms

SOURCE = "pingdom"
PROBES = (("185.136.156.82", "Frankfurt, Germany"), ("178.255.152.2", "Zurich, Switzerland"),
          ("76.72.167.90", "New York, US"), ("94.247.174.83", "Amsterdam, Netherlands"))


def _fixture(name: str) -> tuple[dict[str, str], dict[str, Any]]:
    raw = orjson.loads((FIXTURES / SOURCE / f"{name}.json").read_bytes())
    return dict(raw["headers"]), raw["body"]


_HEADERS, _HTTP = _fixture("http_down")
_, _TRANSACTION = _fixture("transaction_failing")


def whole_seconds(value: datetime) -> datetime:
    return value.replace(microsecond=0)


class PingdomCheck:
    def __init__(self, plan: ServicePlan, rng: random.Random) -> None:
        self.rng = rng
        self.transaction = rng.random() < 0.3
        self.name = f"{plan.name} {'checkout flow' if self.transaction else 'storefront'}"
        self.id = rng.randint(1_000_000, 9_999_999)
        self.service = plan.name
        self.host = host_for(plan.name)
        minutes = rng.choice([5, 10, 20]) if self.transaction else rng.choice([1, 1, 5, 15])
        self.every = timedelta(minutes=minutes)
        self.confirm_after = timedelta(milliseconds=rng.randint(1500, 9000))

    def webhook(self, down: bool, changed: datetime, sent_at: datetime) -> Recorded:
        body: dict[str, Any] = copy.deepcopy(_TRANSACTION if self.transaction else _HTTP)
        bad, good = ("FAILING", "SUCCESS") if self.transaction else ("DOWN", "UP")
        first, second = self.rng.sample(PROBES, 2)
        body.update(
            check_id=self.id, check_name=self.name,
            tags=[f"service:{self.service}", "severity:critical"],
            previous_state=good if down else bad, current_state=bad if down else good,
            state_changed_timestamp=int(changed.timestamp()),
            state_changed_utc_time=changed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            first_probe={"ip": first[0], "ipv6": "", "location": first[1]},
            second_probe=({"ip": second[0], "ipv6": "", "location": second[1], "version": 1}
                          if down else {}),
        )
        body["check_params"]["hostname"] = self.host
        body["check_params"]["full_url"] = f"https://{self.host}{body['check_params']['url']}"
        if down:
            body["description"] = self.rng.choice(["HTTP Error 503", "Timeout (> 30s)",
                                                   "Connection refused"])
        else:
            body.update(description="OK", long_description="OK", error_message="")
        key = f"pingdom-{self.id}-{self.rng.getrandbits(64):016x}"
        return Recorded(SOURCE, ms(sent_at + network_delay(self.rng)), dict(_HEADERS),
                        orjson.dumps(body), key=key)


def observe(plan: ServicePlan, rng: random.Random) -> Observation:
    check = PingdomCheck(plan, rng)
    seen = Observation()
    phase = plan.begin + timedelta(milliseconds=rng.randrange(
        int(check.every.total_seconds() * 1000)))
    for outage in plan.outages:
        _around(check, outage, phase, plan.end, seen)
    return seen


def _broken(outage: Outage, at: datetime) -> bool:
    return outage.start <= at < outage.end


def _around(check: PingdomCheck, outage: Outage, phase: datetime, end_of_world: datetime,
            seen: Observation) -> None:
    rng = check.rng
    test = phase + check.every * -(-(outage.start - phase) // check.every)
    down: Recorded | None = None
    changed_down: datetime | None = None
    while test < end_of_world:
        if down is None:
            confirm = test + check.confirm_after
            if not _broken(outage, test):
                return  # over before a test saw it
            if _broken(outage, confirm):  # the second probe confirms: DOWN
                changed_down = whole_seconds(confirm)
                down = check.webhook(True, changed_down,
                                     confirm + timedelta(seconds=rng.uniform(0.5, 4)))
                seen.deliveries.append(down)
        elif not _broken(outage, test):  # the first passing test: UP
            changed_up = whole_seconds(test)
            seen.deliveries.append(check.webhook(
                False, changed_up, test + timedelta(seconds=rng.uniform(0.5, 4))))
            assert changed_down is not None
            seen.reports.append(Report(outage=outage, monitor=check.name, started=changed_down,
                                       detected=down.received_at, resolved=changed_up))
            return
        test += check.every


MODELS = {"pingdom": observe}
