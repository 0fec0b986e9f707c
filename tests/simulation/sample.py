"""A deliberately plain monitor for the simulation's own tests (not registered with the
tool models): an Uptime Kuma HTTP monitor checking every 60 s, sending a webhook on each
state change (louislam/uptime-kuma server/model/monitor.js: a notification is sent for an
"important" beat, the first beat of a new status; heartbeat.time is UTC without a zone,
server/model/heartbeat.js). Its report is what those two payloads state."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from tests.scenarios.payloads import kuma
from tests.simulation.world import Model, Observation, Report, ServicePlan, ms

INTERVAL = timedelta(seconds=60)


def first_check(plan: ServicePlan, phase: timedelta, at: datetime) -> datetime:
    """The first check at or after ``at`` (checks run at begin + phase + k * INTERVAL)."""
    steps = -(-(at - plan.begin - phase) // INTERVAL)
    return ms(plan.begin + phase + steps * INTERVAL)


def kuma_every_minute(plan: ServicePlan, rng: random.Random) -> Observation:
    seen = Observation()
    phase = timedelta(milliseconds=rng.randrange(60_000))
    name = f"{plan.name} health"
    for outage in plan.outages:
        down, up = first_check(plan, phase, outage.start), first_check(plan, phase, outage.end)
        if down >= outage.end:
            continue  # over between two checks: never seen
        sent_down = down + timedelta(milliseconds=rng.randrange(50, 2000))
        sent_up = up + timedelta(milliseconds=rng.randrange(50, 2000))
        seen.deliveries += [kuma(False, down, sent_down, monitor=name, service=plan.name),
                            kuma(True, up, sent_up, monitor=name, service=plan.name)]
        seen.reports.append(Report(outage, "kuma_every_minute", started=down,
                                   detected=sent_down, resolved=up))
    return seen


SAMPLE: dict[str, Model] = {"kuma_every_minute": kuma_every_minute}
