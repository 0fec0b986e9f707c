"""Healthchecks checks of a service's scheduled jobs, and the "Webhook" integration.

What the model follows (healthchecks/healthchecks, hc/api/models.py unless named):

- Check kinds: "simple" (a period ``timeout``), "cron" (``schedule`` in ``tz``, evaluated
  with cronsim) and "oncalendar" (systemd OnCalendar ``schedule`` in ``tz``, evaluated
  with the oncalendar package). ``Check.get_grace_start``: while the check is up, the
  first deadline after ``last_ping`` (``last_ping + timeout``, or the schedule's next
  tick after ``last_ping`` in ``tz``), and with a ``/start`` pending, the earlier of that
  and ``last_start``. ``going_down_after`` = grace start + ``grace``.
- ``Check.ping``: ``/start`` sets ``last_start`` only; success and ``/fail`` set
  ``last_ping`` (clearing ``last_start``), and a status change creates a Flip at the ping
  (``/fail`` flips down at once, reason "fail"; a success after "down" flips up).
- ``sendalerts.handle_going_down``: a check past ``alert_after`` whose status computes
  to "down" is flipped with ``flip.created = check.going_down_after()``, the exact moment,
  whenever the loop (every ~2 s) notices; then ``process_one_flip`` notifies.
- hc/integrations/webhook/transport.py: the body is the user's template with ``$NAME_JSON``,
  ``$STATUS``, ``$NOW`` (``flip.created`` to the second, ``isoformat()``: ``+00:00``),
  ``$CODE``, ``$TAGS`` and ``$JSON`` (``json.dumps(check.to_dict())`` at send time: a down
  check's ``next_ping`` is null, since ``get_grace_start`` is None unless up; ``started``
  says a ``/start`` is pending; times via ``isostring``, whole seconds), replaced in one
  pass (hc/lib/string.py ``replace``). The template here is the one in
  tests/fixtures/healthchecks: ``{"name": $NAME_JSON, "status": "$STATUS", "now": "$NOW",
  "code": "$CODE", "tags": "$TAGS", "check": $JSON}``.
- hc/api/transports.py ``HttpTransport.request``: up to 3 tries of the same bytes (30 s
  timeout each) on an error or a non-2xx answer: retries of identical bytes.
- templates/docs/measuring_script_run_time.md: a job that sent ``/start`` and no success
  within the grace time is down ("hung run").

The jobs: each scheduled run starts on time (plus process start-up), pings ``/start`` if
the check uses it, and pings success after its run. A run that starts while the service
is broken either never pings (a missed run), pings ``/fail``, or hangs after ``/start``.

Report (TIMELINE.md rule 8): the failure starts at the first deadline after the payload's
``last_ping`` (from its ``schedule``/``tz`` or ``timeout``) when that deadline is at or
before the payload's down time ``$NOW`` (a missed or hung run); otherwise (a ``/fail``:
``last_ping`` is the failure itself, and the next deadline is still ahead) at ``$NOW``.
It is computed from the payload's own values, with cronsim on the schedule (for an
OnCalendar schedule, on the cron expression the model drew it as).

The service is the check's ``service:<name>`` tag (Healthchecks tags are space
separated); a service name with a space gets a ``[services]`` name instead.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from cronsim import CronSim

from tests.fixtures import FIXTURES
from tests.scenarios.payloads import Recorded
from tests.simulation.tools.uptime_kuma import network_delay
from tests.simulation.tools.uptimerobot import exact
from tests.simulation.world import Observation, Outage, Report, ServicePlan, ms

SOURCE = "healthchecks"
TEMPLATE = ('{"name": $NAME_JSON, "status": "$STATUS", "now": "$NOW", "code": "$CODE", '
            '"tags": "$TAGS", "check": $JSON}')
SITE = "https://healthchecks.io"

# (systemd OnCalendar expression, the same ticks as cron). Both in the check's zone; the
# equivalence holds away from DST transitions (worlds start in January 2025).
ONCALENDAR = (
    ("*-*-* 05:30:00", "30 5 * * *"),
    ("*-*-* *:07:00", "7 * * * *"),
    ("*-*-* *:00/15:00", "*/15 * * * *"),
    ("*-*-* 00/6:20:00", "20 */6 * * *"),
)
CRON = ("0 2 * * *", "15 * * * *", "*/10 * * * *", "5 */4 * * *", "45 23 * * *")
ZONES = ("UTC", "Europe/Riga", "America/New_York", "Asia/Kolkata", "Australia/Sydney")


def _headers() -> dict[str, str]:
    raw = orjson.loads((FIXTURES / SOURCE / "down_cron_missed_run.json").read_bytes())
    return dict(raw["headers"])


_HEADERS = _headers()


def isostring(value: datetime | None) -> str | None:
    """hc/api/models.py ``isostring``: no microseconds, ``+00:00``."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat() if value else None


def fill(template: str, ctx: dict[str, str]) -> str:
    """hc/lib/string.py ``replace``: placeholders of the template only, in one pass."""
    keys = sorted(ctx, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(k) for k in keys))
    return pattern.sub(lambda m: ctx[m.group(0)], template)


def next_tick(cron: str, tz: str, after: datetime) -> datetime:
    """``Check.get_grace_start`` for a schedule: the next tick after ``after`` in ``tz``."""
    tick: datetime = next(CronSim(cron, after.astimezone(ZoneInfo(tz))))
    return tick.astimezone(UTC)


@dataclass
class Run:
    at: datetime  # the scheduled time
    started: datetime  # the process started (and pinged /start, if used)
    finished: datetime  # it pinged success or /fail


class HcCheck:
    def __init__(self, plan: ServicePlan, rng: random.Random) -> None:
        self.rng = rng
        self.kind = rng.choice(["simple", "cron", "cron", "oncalendar"])
        job = rng.choice(["reconciliation", "export", "backup", "sync"])
        self.name = f"{plan.name}-{job}"
        self.tz = rng.choice(ZONES)
        self.schedule = self.cron = ""
        self.timeout = 0
        if self.kind == "cron":
            self.schedule = self.cron = rng.choice(CRON)
        elif self.kind == "oncalendar":
            self.schedule, self.cron = rng.choice(ONCALENDAR)
        else:
            self.timeout = rng.choice([600, 900, 3600, 21600])
        self.grace = rng.choice([60, 300, 900, 3600])
        # A hung run only on scheduled checks: their grace start is the scheduled tick,
        # whichever later /start is pending; a period check's would depend on which
        # /start is the latest when sendalerts looks.
        self.mode = rng.choice(["missed", "fail"] + (["hang"] if self.kind != "simple" else []))
        self.uses_start = self.mode == "hang" or rng.random() < 0.5
        self.code = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        severity = rng.choice(["critical", "high", "warning"])
        self.service_tag = not any(c.isspace() for c in plan.name)
        self.tags = " ".join(["prod", f"severity:{severity}"]
                             + ([f"service:{plan.name}"] if self.service_tag else []))
        self.n_pings = rng.randint(100, 5000)
        self.phase = plan.begin + timedelta(milliseconds=rng.randrange(
            (self.timeout or 60) * 1000))

    def ticks(self, after: datetime) -> Iterator[datetime]:
        """Scheduled runs at or after ``after``."""
        if self.kind == "simple":
            step = timedelta(seconds=self.timeout)
            at = self.phase + step * max(0, -(-(after - self.phase) // step))
            while True:
                yield at
                at += step
        else:
            yield from (t.astimezone(UTC) for t in
                        CronSim(self.cron, (after - timedelta(milliseconds=1)).astimezone(
                            ZoneInfo(self.tz))))

    def run(self, at: datetime) -> Run:
        period = self.timeout or 600
        began = at + timedelta(milliseconds=self.rng.randint(50, 2000))
        # At most 30 % of the grace and the period (a normal run never goes down) and at
        # most 3 min (a /fail comes soon after the run started, within the outage's
        # reopen window however early in the run the service recovered).
        took = timedelta(milliseconds=self.rng.randint(
            1000, min(self.grace, period, 600) * 300))
        return Run(at, began, began + took)

    def deadline(self, last_ping: datetime) -> datetime:
        if self.kind == "simple":
            return last_ping + timedelta(seconds=self.timeout)
        return next_tick(self.cron, self.tz, last_ping)

    def to_dict(self, status: str, last_ping: datetime, started: bool,
                last_duration: timedelta | None) -> dict[str, Any]:
        """``Check.to_dict()`` (v3, not read-only), keys in its order."""
        self.n_pings += 1
        result: dict[str, Any] = {
            "name": self.name, "slug": self.name, "tags": self.tags,
            "desc": f"{self.name} of the {self.kind} kind", "grace": self.grace,
            "n_pings": self.n_pings, "status": status, "started": started,
            "last_ping": isostring(last_ping),
            "next_ping": isostring(self.deadline(last_ping)) if status == "up" else None,
            "manual_resume": False, "methods": "", "subject": "", "subject_fail": "",
            "start_kw": "", "success_kw": "", "failure_kw": "", "filter_subject": False,
            "filter_body": False, "filter_http_body": False, "filter_default_fail": False,
            "badge_url": f"{SITE}/b/2/{self.code[:8]}.svg",
        }
        if last_duration is not None:
            result["last_duration"] = int(last_duration.total_seconds())
        result.update(
            uuid=self.code, ping_url=f"https://hc-ping.com/{self.code}",
            update_url=f"{SITE}/api/v3/checks/{self.code}",
            pause_url=f"{SITE}/api/v3/checks/{self.code}/pause",
            resume_url=f"{SITE}/api/v3/checks/{self.code}/resume",
            channels=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
        )
        if self.kind == "simple":
            result["timeout"] = self.timeout
        else:
            result.update(schedule=self.schedule, tz=self.tz)
        return result

    def notify(self, status: str, flip: datetime, check: dict[str, Any]) -> list[Recorded]:
        """One webhook (and its retries, the same bytes) for a flip."""
        body = fill(TEMPLATE, {
            "$NAME_JSON": json.dumps(self.name), "$STATUS": status,
            "$NOW": flip.astimezone(UTC).replace(microsecond=0).isoformat(),
            "$CODE": self.code, "$TAGS": self.tags, "$JSON": json.dumps(check),
        }).encode()
        rng = self.rng
        sent = flip + timedelta(milliseconds=rng.randint(10, 2300))  # sendalerts' loop
        first = Recorded(SOURCE, ms(sent + network_delay(rng)), dict(_HEADERS), body,
                         key=f"hc-{self.code}-{rng.getrandbits(64):016x}")
        copies = [first]
        for _ in range(2):  # 3 tries at most
            if rng.random() >= 0.25:
                break
            # Our answer was lost (the 30 s timeout) or was a 5xx: the same bytes again.
            wait = (timedelta(seconds=30) if rng.random() < 0.5
                    else timedelta(milliseconds=rng.randint(5, 800)))
            copies.append(copies[-1].retried(ms(copies[-1].received_at + wait
                                                + network_delay(rng))))
        return copies


def observe(plan: ServicePlan, rng: random.Random) -> Observation:
    check = HcCheck(plan, rng)
    seen = Observation(services={} if check.service_tag else {plan.name: [exact(check.name)]})
    for outage in plan.outages:
        _around(check, outage, plan.end, seen)
    return seen


def _around(check: HcCheck, outage: Outage, end_of_world: datetime,
            seen: Observation) -> None:
    ticks = check.ticks(outage.start - timedelta(days=1, hours=1))
    at = next(ticks)
    previous = check.run(at)
    for at in ticks:
        if at >= outage.start:
            break
        previous = check.run(at)  # the last run before the outage: it succeeded
    if at >= outage.end:
        return  # no run while the service was broken: the check never saw it
    failed = check.run(at)
    recovery_at = next(t for t in check.ticks(outage.end) if t > at)
    recovery = check.run(recovery_at)

    last_ping, started = previous.finished, False
    last_duration = previous.finished - previous.started if check.uses_start else None
    if check.mode == "fail":
        flip = failed.finished  # /fail: down at once
        last_ping = failed.finished
        last_duration = failed.finished - failed.started if check.uses_start else None
    else:
        grace_start = check.deadline(previous.finished)
        if check.mode == "hang":
            grace_start = min(grace_start, failed.started)  # the pending /start
            started = True
        flip = grace_start + timedelta(seconds=check.grace)
        if recovery.finished < flip:
            return  # the next run succeeded within the grace time: never down
    if flip >= end_of_world:
        return
    down = check.notify("down", flip, check.to_dict("down", last_ping, started, last_duration))
    seen.deliveries += down
    up: list[Recorded] = []
    if recovery.finished < end_of_world:
        up = check.notify("up", recovery.finished, check.to_dict(
            "up", recovery.finished, False,
            recovery.finished - recovery.started if check.uses_start else None))
        seen.deliveries += up

    # What the payload states (TIMELINE.md rule 8), from its own values.
    stated = orjson.loads(down[0].body)
    now = datetime.fromisoformat(stated["now"])
    pinged = datetime.fromisoformat(stated["check"]["last_ping"])
    deadline = check.deadline(pinged)
    seen.reports.append(Report(
        outage=outage,
        monitor=check.name,
        started=deadline if deadline <= now else now,
        detected=down[0].received_at,
        resolved=datetime.fromisoformat(orjson.loads(up[0].body)["now"]) if up else None,
    ))


MODELS = {"healthchecks": observe}
