"""The simulated monitoring world: services, their real outages, and the monitors that
watch them. Everything here is ground truth we wrote ourselves, never Hindsight's code.

A world is drawn from a seed. Each service has outages (real start and end, known only to
the world) and a few monitors of different tools. A monitor observes the service's
outages the way its tool really does (schedules, evaluation ticks, grace periods, group
waits, retries, reminders, clock formats) and returns:

- ``deliveries``: the HTTP requests the tool would send, as ``Recorded`` (exact bytes,
  headers, ``received_at``), ready for ``POST /v1/deliveries/import``;
- ``reports``: per outage it noticed, what those payloads state under TIMELINE.md (the
  start the failing signal carries, the earliest notification, the recovery time, an
  acknowledgement), computed by the model from the values it put in the payloads;
- ``services``: the ``[services]`` globs that make its subjects belong to the service,
  when the payload itself cannot say which service it is.

The oracle (``tests/simulation/oracle.py``) combines the reports of one outage into the
incident Hindsight must show. Outages of one service are kept far enough apart (see
``OUTAGE_GAP``) that, by TIMELINE.md rules 1 and 2, each noticed outage is exactly one
incident.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tests.scenarios.payloads import Recorded

# Between one outage's end and the next outage's start on the same service: far more than
# the reopen window (15 min), the slowest detection or recovery any model produces (a
# daily cron check's next run, an Alertmanager group_interval), and the 2 h deploy window.
OUTAGE_GAP = timedelta(hours=30)


@dataclass(frozen=True)
class Outage:
    """A real failure of a service: broken from ``start`` until ``end`` (exclusive)."""

    service: str
    start: datetime
    end: datetime
    index: int  # within its service, in time order

    @property
    def key(self) -> tuple[str, int]:
        return (self.service, self.index)


@dataclass(frozen=True)
class Report:
    """What one monitor's deliveries state about one outage, in TIMELINE.md's terms.

    - ``started``: the earliest ``occurred_at`` of its failing signals (for a cron check,
      the missed deadline when the payload lets us compute it; for an alert, ``startsAt``).
    - ``detected``: the earliest ``notified_at`` of a delivery that reported failing (the
      tool's send time when its payload has one, else the delivery's ``received_at``;
      for a failing period seen after the fact, the receipt of the recovery).
    - ``resolved``: the latest recovery ``occurred_at`` among its subjects, or None while
      any of its subjects is still failing at the end of the world.
    - ``acknowledged``: the earliest acknowledgement it sent (on-call tools), else None.
    """

    outage: Outage
    monitor: str
    started: datetime
    detected: datetime
    resolved: datetime | None
    acknowledged: datetime | None = None


@dataclass
class Observation:
    deliveries: list[Recorded] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    services: dict[str, list[str]] = field(default_factory=dict)

    def extend(self, other: Observation) -> None:
        self.deliveries += other.deliveries
        self.reports += other.reports
        for service, globs in other.services.items():
            self.services.setdefault(service, []).extend(globs)


@dataclass(frozen=True)
class ServicePlan:
    """One service of the world: its name (unique across worlds: it carries the world's
    prefix), its outages in time order, and the window the world covers."""

    name: str
    outages: tuple[Outage, ...]
    begin: datetime
    end: datetime


# A monitor model: observes one service with its own random stream (derived from the
# world's seed, so a world is reproducible) and returns what its tool sent.
Model = Callable[[ServicePlan, random.Random], Observation]


def ms(value: datetime) -> datetime:
    """``value`` cut to whole milliseconds (tools send at most ms; so does the oracle)."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def random_instant(rng: random.Random, begin: datetime, end: datetime) -> datetime:
    """A uniformly drawn instant in [begin, end), to the millisecond."""
    span_ms = int((end - begin).total_seconds() * 1000)
    return begin + timedelta(milliseconds=rng.randrange(max(span_ms, 1)))


def plan_outages(rng: random.Random, name: str, begin: datetime, days: int,
                 most: int = 3) -> ServicePlan:
    """Up to ``most`` outages of 1 minute to 3 hours, ``OUTAGE_GAP`` apart, in a window of
    ``days`` days starting at ``begin``. Starts and ends fall anywhere, to the ms."""
    end_of_world = begin + timedelta(days=days)
    outages: list[Outage] = []
    cursor = begin + timedelta(hours=3)
    for index in range(rng.randint(0, most)):
        start = random_instant(rng, cursor, cursor + timedelta(hours=20))
        length = timedelta(seconds=rng.choice([rng.uniform(60, 600), rng.uniform(600, 10800)]))
        stop = ms(start + length)
        if stop + OUTAGE_GAP > end_of_world:
            break
        outages.append(Outage(name, start, stop, index))
        cursor = stop + OUTAGE_GAP
    return ServicePlan(name, tuple(outages), begin, end_of_world)


EPOCH = datetime(2025, 1, 6, tzinfo=UTC)
