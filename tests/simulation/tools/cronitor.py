"""Cronitor job monitors and their webhook alerts.

What the model follows:

- cronitor.io/docs/using-webhooks ("Webhook Fields"): ``id`` (the monitor's key),
  ``monitor`` (its name), ``description``, ``type`` ALERT or RECOVERY, ``rule``,
  ``environment``, ``group`` (or null), ``issue_url`` and ``monitor_url``. No event time,
  no schedule: Hindsight can only date a Cronitor alert by its receipt (TIMELINE.md:
  ``time_source: receipt``), so a Report's start, detection and resolution are the
  receipts of the ALERT and RECOVERY.
- Recorded Cronitor payloads (gist noob-master147/d8daedd1772e636fab7586bcb4e0d325) carry
  only ``id``, ``rule``, ``monitor`` and ``description``; some monitors here send no
  ``issue_url`` either, and then a job that misses its run on Monday and again on Friday
  sends the same bytes both times (issue 10 defect 1: two outages, two incidents).
- A job monitor has a schedule and a grace period (``grace_seconds``, Cronitor's monitor
  API): a run that has not been received by its scheduled time plus the grace raises the
  ALERT; a later successful run sends the RECOVERY. ``realert_interval`` (monitor API:
  "every hour", "every 8 hours") re-sends the ALERT while the job stays failing: the same
  bytes, hours apart, so a repeat, never a retry.

Nothing in the payload names a service (``group`` is a folder), so the model returns a
``[services]`` name for its monitor.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from cronsim import CronSim

from tests.fixtures import FIXTURES
from tests.scenarios.payloads import Recorded
from tests.simulation.tools.uptime_kuma import network_delay
from tests.simulation.tools.uptimerobot import exact
from tests.simulation.world import Observation, Report, ServicePlan, ms

SOURCE = "cronitor"
SCHEDULES = ("0 2 * * *", "30 4 * * *", "0 * * * *", "*/30 * * * *")


def _fixture(name: str) -> tuple[dict[str, str], dict[str, Any]]:
    raw = orjson.loads((FIXTURES / SOURCE / f"{name}.json").read_bytes())
    body: dict[str, Any] = raw["body"]
    return dict(raw["headers"]), body


_HEADERS, _ALERT = _fixture("job_alert_not_run")
_, _RECOVERY = _fixture("job_recovery")


def _words(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} minutes {seconds % 60} seconds"


class Job:
    def __init__(self, plan: ServicePlan, rng: random.Random) -> None:
        self.rng = rng
        self.name = f"{plan.name} invoice export"
        self.key = "".join(c if c.isalnum() else "-" for c in self.name.lower())
        self.schedule = rng.choice(SCHEDULES)
        # Grace of at most 5 min: the ALERT, dated by its receipt, may land after the
        # outage ended, but then within the reopen window (15 min) of the other monitors'
        # recoveries (TIMELINE.md rule 2), so one outage stays one incident. With a longer
        # grace Hindsight would rightly see a second failing period (a contract question
        # about receipt-dated tools, not modelled).
        self.grace = timedelta(minutes=rng.choice([1, 2, 5]))
        self.realert = rng.choice([None, timedelta(hours=1), timedelta(hours=8)])
        self.issue_urls = rng.random() < 0.4
        self.group = rng.choice([None, "billing"])

    def body(self, template: dict[str, Any], description: str, issue: str) -> dict[str, Any]:
        body = {**template, "id": self.key, "monitor": self.name, "description": description,
                "group": self.group, "monitor_url": f"https://cronitor.io/app/monitors/{self.key}"}
        if self.issue_urls:
            body["issue_url"] = f"https://cronitor.io/app/issues/{issue}"
        else:
            del body["issue_url"]
        return body

    def send(self, body: dict[str, Any], sent_at: datetime) -> Recorded:
        return Recorded(SOURCE, ms(sent_at + network_delay(self.rng)), dict(_HEADERS),
                        orjson.dumps(body), key=f"cronitor-{self.rng.getrandbits(64):016x}")

    def runs(self, after: datetime) -> CronSim:
        return CronSim(self.schedule, after.astimezone(UTC))


def observe(plan: ServicePlan, rng: random.Random) -> Observation:
    job = Job(plan, rng)
    seen = Observation(services={plan.name: [exact(job.name)]})
    for outage in plan.outages:
        due: datetime = next(job.runs(outage.start - timedelta(milliseconds=1)))
        if due >= outage.end:
            continue  # no run was due while the service was broken
        # The job's process fails without reporting: nothing reaches Cronitor by due+grace.
        later = job.runs(due)
        fixed: datetime = next(later)
        while fixed < outage.end:
            fixed = next(later)
        finished = fixed + timedelta(milliseconds=rng.randint(2_000, 240_000))
        alert_at = due + job.grace + timedelta(milliseconds=rng.randint(500, 45_000))
        if finished <= alert_at:
            continue  # the next run succeeded before the alert was due
        issue = "".join(rng.choice("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
                        for _ in range(6))
        grace_minutes = int(job.grace.total_seconds() // 60)
        alert = job.body(_ALERT, f"{job.name} has not run in {grace_minutes} minutes.", issue)
        failing = [job.send(alert, alert_at)]
        reminder = alert_at + job.realert if job.realert else None
        # (A reminder sent seconds before the recovery could arrive after it; kept clear.)
        while reminder is not None and job.realert is not None \
                and reminder + timedelta(minutes=1) < finished:
            failing.append(job.send(alert, reminder))  # the same bytes: a repeat
            reminder += job.realert
        recovery_at = finished + timedelta(milliseconds=rng.randint(200, 5_000))
        recovered = job.send(job.body(
            _RECOVERY,
            f"{job.name} is passing. Incident duration: {_words(recovery_at - alert_at)}",
            issue), recovery_at)
        seen.deliveries += [*failing, recovered]
        seen.reports.append(Report(
            outage=outage, monitor=job.name,
            started=min(d.received_at for d in failing),
            detected=min(d.received_at for d in failing),
            resolved=recovered.received_at,
        ))
    return seen


MODELS = {"cronitor": observe}
