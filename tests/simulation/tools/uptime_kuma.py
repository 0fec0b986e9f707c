"""Uptime Kuma monitors, as louislam/uptime-kuma sends them.

What the model follows (server/model/monitor.js ``start()`` / ``beat()``, 2.x):

- A beat sets ``bean.time = R.isoDateTimeMillis(dayjs.utc())`` *before* the check, so
  ``heartbeat.time`` is the beat's start, UTC without a zone, ``YYYY-MM-DD HH:mm:ss.SSS``.
  The next beat is scheduled ``interval`` seconds after ``bean.time``
  (``intervalRemainingMs = max(1, beatInterval*1000 - (now - bean.time))``), or at once
  when the check, the notification and the store took longer; a PENDING beat waits
  ``retryInterval`` instead.
- A failed check is PENDING while ``retries < maxretries`` (``retries++``), then DOWN.
- ``isImportantBeat`` / ``isImportantForNotification``: UP/PENDING -> DOWN and DOWN -> UP
  notify; UP -> PENDING and PENDING -> UP do not (an outage shorter than the retries is
  never reported, even its recovery).
- A non-important DOWN beat with ``resendInterval > 0`` counts ``downCount`` and, when it
  reaches ``resendInterval``, sends the notification again with that beat (a reminder:
  same monitor, later ``heartbeat.time``, ``important: false``) and resets the count.
- ``sendNotification`` awaits each provider before the beat goes on, so a reminder is
  always sent after the notification before it. The UP notification carries
  ``lastDownTime`` (the important DOWN beat's time).
- server/notification-providers/webhook.js posts ``{heartbeat, monitor, msg}`` as JSON, or
  as the multipart field ``data`` ("Preset - multipart/form-data", npm form-data's
  ``--------------------------`` + 24 digits boundary); no retries.

The service is the monitor's ``service`` tag (what TIMELINE.md reads from a payload's
``service`` label), so no ``[services]`` glob is needed.
"""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from tests.fixtures import FIXTURES
from tests.scenarios.payloads import Recorded
from tests.simulation.world import Observation, Outage, Report, ServicePlan, ms

SOURCE = "uptime-kuma"
DOWN, UP, PENDING = 0, 1, 2
MS = timedelta(milliseconds=1)


def _fixture(name: str) -> tuple[dict[str, str], dict[str, Any]]:
    raw = orjson.loads((FIXTURES / SOURCE / f"{name}.json").read_bytes())
    return dict(raw["headers"]), raw["body"]


_DOWN_HEADERS, _DOWN_BODY = _fixture("down")
_UP_HEADERS, _UP_BODY = _fixture("up")


def kuma_time(value: datetime) -> str:
    """``R.isoDateTimeMillis(dayjs.utc())``: UTC, no zone, milliseconds."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _millis(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(milliseconds=rng.randint(int(low), int(high)))


def network_delay(rng: random.Random) -> timedelta:
    """From a few ms (same network) to seconds (a slow path)."""
    return _millis(rng, 3, 80) if rng.random() < 0.7 else _millis(rng, 80, 4000)


class KumaMonitor:
    """One HTTP monitor with its settings drawn from the choices the UI offers."""

    def __init__(self, plan: ServicePlan, rng: random.Random) -> None:
        self.rng = rng
        self.service = plan.name
        self.name = f"{plan.name} API health"
        self.id = rng.randint(1, 5000)
        self.interval = rng.choice([20, 30, 60, 60, 120])
        self.retry_interval = rng.choice([self.interval, 20, 30])
        self.max_retries = rng.choice([0, 1, 2, 3])
        self.resend = rng.choice([0, 0, 1, 3, 10])
        self.timeout = max(int(self.interval * 0.8), 16)  # the UI's default, 80 % of it
        self.severity = rng.choice(["critical", "high", "warning"])
        self.form_data = rng.random() < 0.25
        self.zone = rng.choice(["Europe/Berlin", "UTC", "America/New_York", "Asia/Tokyo"])

    def monitor_json(self) -> dict[str, Any]:
        monitor: dict[str, Any] = copy.deepcopy(_DOWN_BODY["monitor"])
        monitor.update(
            id=self.id, name=self.name, pathName=self.name, parent=None,
            url=f"https://{host_for(self.service)}/api/health", interval=self.interval,
            retryInterval=self.retry_interval, maxretries=self.max_retries,
            resendInterval=self.resend, timeout=self.timeout,
        )
        for tag in monitor["tags"]:
            tag["monitor_id"] = self.id
            if tag["name"] == "service":
                tag["value"] = self.service
            elif tag["name"] == "severity":
                tag["value"] = self.severity
        return monitor

    def notification(self, beat: dict[str, Any], sent_at: datetime) -> Recorded:
        when = datetime.strptime(beat["time"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
        local = when.astimezone(ZoneInfo(self.zone))
        offset = local.strftime("%z")
        beat = {**beat, "timezone": self.zone, "timezoneOffset": f"{offset[:3]}:{offset[3:]}",
                "localDateTime": local.strftime("%Y-%m-%d %H:%M:%S")}
        text = "✅ Up" if beat["status"] == UP else "🔴 Down"
        data = {"heartbeat": beat, "monitor": self.monitor_json(),
                "msg": f"[{self.name}] [{text}] {beat['msg']}"}
        headers = dict(_UP_HEADERS if beat["status"] == UP else _DOWN_HEADERS)
        body = orjson.dumps(data)
        if self.form_data:
            boundary = "-" * 26 + "".join(str(self.rng.randrange(10)) for _ in range(24))
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
            body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n"
                    .encode() + body + f"\r\n--{boundary}--\r\n".encode())
        key = f"kuma-{self.id}-{self.rng.getrandbits(64):016x}"
        return Recorded(SOURCE, ms(sent_at + network_delay(self.rng)), headers, body, key=key)


def host_for(service: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in service.lower()) + ".example.com"


def observe(plan: ServicePlan, rng: random.Random) -> Observation:
    """Beats around each outage (between outages every beat is UP and sends nothing)."""
    monitor = KumaMonitor(plan, rng)
    seen = Observation()
    beat_at = plan.begin + _millis(rng, 0, monitor.interval * 1000)
    for outage in plan.outages:
        # Jump over the quiet UP beats to the first one at or after the outage's start.
        step = timedelta(seconds=monitor.interval)
        if beat_at < outage.start:
            beat_at += step * -(-(outage.start - beat_at) // step)
        beat_at = _around(monitor, outage, beat_at, plan.end, seen)
    return seen


def _around(monitor: KumaMonitor, outage: Outage, beat_at: datetime, end_of_world: datetime,
            seen: Observation) -> datetime:
    rng = monitor.rng
    status, retries, down_count = UP, 0, 0
    down_beat: str | None = None
    failing: list[Recorded] = []
    resolved: datetime | None = None
    previous = beat_at - timedelta(seconds=monitor.interval)
    while beat_at < end_of_world:
        broken = outage.start <= beat_at < outage.end
        if broken:
            took = (_millis(rng, monitor.timeout * 1000, monitor.timeout * 1000 + 40)
                    if rng.random() < 0.3 else _millis(rng, 2, 400))
            # monitor.js: PENDING while retries < maxretries, then DOWN.
            new = PENDING if monitor.max_retries > 0 and retries < monitor.max_retries else DOWN
            retries += 1
        else:
            took, new, retries = _millis(rng, 20, 600), UP, 0
        beat: dict[str, Any] = {
            "monitorID": monitor.id, "status": new, "time": kuma_time(beat_at),
            "msg": rng.choice(["Request failed with status code 503",
                               f"timeout of {monitor.timeout * 1000}ms exceeded",
                               "connect ECONNREFUSED 10.0.3.7:443"]) if broken else "200 - OK",
            "ping": None if broken else int(took / MS), "important": False,
            "duration": round((beat_at - previous).total_seconds()), "retries": retries,
            "response": None,
        }
        done = beat_at + took + _millis(rng, 1, 15)
        important = (new == DOWN and status in (UP, PENDING)) or (new == UP and status == DOWN)
        if important:
            beat["important"] = True
            if new == DOWN:
                down_beat = beat["time"]
            else:
                beat["lastDownTime"] = down_beat
            delivery = monitor.notification(beat, done)
            seen.deliveries.append(delivery)
            if new == DOWN:
                failing.append(delivery)
            done = delivery.received_at + _millis(rng, 1, 30)  # awaited before going on
            down_count = 0
        elif new == DOWN and monitor.resend > 0:
            down_count += 1
            if down_count >= monitor.resend:
                delivery = monitor.notification(beat, done)  # a reminder: a repeat
                seen.deliveries.append(delivery)
                failing.append(delivery)
                done = delivery.received_at + _millis(rng, 1, 30)
                down_count = 0
        previous, status = beat_at, new
        wait = timedelta(seconds=monitor.retry_interval if new == PENDING else monitor.interval)
        beat_at = max(beat_at + wait, done + MS) + _millis(rng, 0, 4)  # timer lateness
        if new == UP:  # a beat that passes comes after the outage's end
            if important:
                resolved = datetime.strptime(beat["time"], "%Y-%m-%d %H:%M:%S.%f").replace(
                    tzinfo=UTC)
            break
    if down_beat is not None:
        seen.reports.append(Report(
            outage=outage,
            monitor=monitor.name,
            started=datetime.strptime(down_beat, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC),
            detected=min(d.received_at for d in failing),
            resolved=resolved,
        ))
    return beat_at


MODELS = {"uptime-kuma": observe}
