"""Hindsight's own signals (``POST /v1/webhooks/native``) posted by a team's scripts: a
synthetic probe (kind ``uptime``) and a cron job's wrapper (kind ``cron``). Both watch
for outages, so they return ``Report``s.

The format is ours (ingest/sources/native.py; README "Posting your own signals"): one
signal, a list, or ``{"signals": [...]}``; ``occurred_at`` optional (without it the
signal is timed at receipt, ``time_source: receipt``); ``service`` (or the ``service``
label) names the service, so no ``[services]`` glob is needed.

Signed per Standard Webhooks (www.standardwebhooks.com, "Signature scheme" and
"Retries"): ``webhook-id`` is unique per message and a retry sends the *same* id and body
with the attempt's own ``webhook-timestamp`` (``Recorded.line()`` signs with the test
secret and sets the timestamp to the copy's receipt). The specification's retry schedule
starts immediately, then 5 s, 5 min, 30 min...; a script retries when it did not hear our
answer, so both copies reach us. ``notified_at`` is ``webhook-timestamp`` (whole
seconds); deliveries here are received on whole seconds so it equals ``received_at``.
"""

from __future__ import annotations

import math
import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tests.scenarios.payloads import Recorded
from tests.simulation.world import Model, Observation, Report, ServicePlan

_ID_CHARS = string.ascii_letters + string.digits


def stamp(value: datetime, style: str) -> str:
    """``occurred_at`` as a script writes it: milliseconds and ``Z``; the fewest digits
    (``10:02:31.5Z``, ``10:02:31Z``); or milliseconds and ``+00:00``."""
    value = value.astimezone(UTC)
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    if style == "short":
        fraction = f"{value.microsecond / 1e6:.3f}".rstrip("0").rstrip(".")[1:]
        return f"{base}{fraction}Z"
    millis = f".{value.microsecond // 1000:03d}"
    return f"{base}{millis}+00:00" if style == "offset" else f"{base}{millis}Z"


def whole_second_after(value: datetime) -> datetime:
    """The first whole second at or after ``value``."""
    floor = value.replace(microsecond=0)
    return floor if floor == value else floor + timedelta(seconds=1)


@dataclass
class _Script:
    """One script posting one subject's state, with its habits."""

    rng: random.Random
    service: str
    subject: str
    kind: str
    style: str  # "ms", "short", "offset", or "none" (no occurred_at: receipt time)
    shape: str  # "object", "list" or "envelope"
    by_label: bool  # service as the "service" label rather than the field
    retry: float
    deliveries: list[Recorded] = field(default_factory=list)

    def post(self, state: str, at: datetime, summary: str) -> tuple[datetime, datetime]:
        """Post ``state`` observed at ``at``; returns (the signal's occurred_at, the first
        copy's notified_at)."""
        signal: dict[str, Any] = {"kind": self.kind, "subject": self.subject, "state": state}
        if self.by_label:
            signal["labels"] = {"service": self.service, "team": "payments"}
        else:
            signal["service"] = self.service
        if state == "failing":
            signal["severity"] = self.rng.choice(["critical", "P1", "high"])
        if self.style != "none":
            signal["occurred_at"] = stamp(at, self.style)
        signal["summary"] = summary
        body: Any = {"object": signal, "list": [signal], "envelope": {"signals": [signal]}}[
            self.shape]
        received = whole_second_after(at + timedelta(milliseconds=self.rng.randint(80, 1500)))
        msg_id = "msg_" + "".join(self.rng.choice(_ID_CHARS) for _ in range(24))
        headers = {"Content-Type": "application/json", "User-Agent": "ops-scripts/2.1",
                   "webhook-id": msg_id}
        first = Recorded("native", received, headers, orjson.dumps(body), key=msg_id)
        self.deliveries.append(first)
        if self.rng.random() < self.retry:
            wait = self.rng.choice([5, 5, 300])
            self.deliveries.append(first.retried(received + timedelta(seconds=wait)))
        return (at if self.style != "none" else received), received


def _script(plan: ServicePlan, rng: random.Random, kind: str, subject: str) -> _Script:
    return _Script(rng, plan.name, subject, kind,
                   style=rng.choice(["ms", "short", "offset", "none"]),
                   shape=rng.choice(["object", "list", "envelope"]),
                   by_label=rng.random() < 0.3, retry=rng.choice([0.0, 0.1, 0.3]))


def _ticks(start: datetime, step: timedelta, begin: datetime, end: datetime) -> list[datetime]:
    """The schedule's instants in [begin, end)."""
    first = start + step * max(0, math.ceil((begin - start) / step))
    ticks = []
    while first < end:
        ticks.append(first)
        first += step
    return ticks


def native_probe(plan: ServicePlan, rng: random.Random) -> Observation:
    """A synthetic probe checks the service every 30 s, 1 min or 5 min and posts
    ``failing`` after 1 to 3 failed checks in a row (dated at the first failed check, or
    at the one that tripped it), again every 10 min while failing (repeats,
    TIMELINE.md rule 4), and ``ok`` at the first check that passes. It posts ``ok`` once
    when it starts."""
    script = _script(plan, rng, "uptime", f"{plan.name} synthetic probe")
    interval = timedelta(seconds=rng.choice([30, 60, 300]))
    # Checks fall on whole half seconds, so ".5" occurs in "short" style.
    phase = timedelta(milliseconds=rng.randrange(0, int(interval.total_seconds()) * 2) * 500)
    threshold = rng.randint(1, 3)
    dated_first = rng.random() < 0.5
    remind = timedelta(minutes=10)
    start = plan.begin + phase
    script.post("ok", start, "probe started")
    reports = []
    for outage in plan.outages:
        failed = _ticks(start, interval, outage.start, outage.end)
        if len(failed) < threshold:
            continue  # the probe never saw it fail often enough
        trip = failed[threshold - 1]
        started, detected = script.post("failing", failed[0] if dated_first else trip,
                                        "HTTP 503 from /health")
        last = trip
        for check in failed[threshold:]:
            if check - last >= remind:
                script.post("failing", check, "still failing")
                last = check
        recovery = _ticks(start, interval, outage.end, plan.end)[0]
        resolved, _ = script.post("ok", recovery, "HTTP 200 from /health")
        reports.append(Report(outage, "native-probe", started=started, detected=detected,
                              resolved=resolved))
    return Observation(deliveries=script.deliveries, reports=reports)


def native_cron(plan: ServicePlan, rng: random.Random) -> Observation:
    """A cron job (every 15 min or hourly) that uses the service; its wrapper posts
    ``failing`` when a run fails (each failed run: repeats) and ``ok`` when a run succeeds
    again. A run started during an outage fails 1 to 20 s after it starts."""
    script = _script(plan, rng, "cron", f"{plan.name}-reconcile job")
    period = timedelta(minutes=rng.choice([15, 60]))
    start = plan.begin + timedelta(milliseconds=rng.randrange(int(period.total_seconds())) * 1000)
    reports: list[Report] = []
    for outage in plan.outages:
        runs = _ticks(start, period, outage.start, outage.end)
        if not runs:
            continue  # no run fell inside the outage
        posted = [script.post("failing", ms_after(rng, run, 1, 20), "exit status 1")
                  for run in runs]
        recovery = _ticks(start, period, outage.end, plan.end)[0]
        resolved, _ = script.post("ok", ms_after(rng, recovery, 5, 120), "exit status 0")
        reports.append(Report(outage, "native-cron", started=posted[0][0],
                              detected=posted[0][1], resolved=resolved))
    return Observation(deliveries=script.deliveries, reports=reports)


def ms_after(rng: random.Random, at: datetime, low: float, high: float) -> datetime:
    return at + timedelta(milliseconds=rng.randint(int(low * 1000), int(high * 1000)))


MODELS: dict[str, Model] = {"native-probe": native_probe, "native-cron": native_cron}
