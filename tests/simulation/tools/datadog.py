"""Datadog metric monitors notifying a Webhooks-integration webhook.

What the model follows:

- docs.datadoghq.com/integrations/webhooks/: the payload is the webhook's template with
  its variables filled in as strings (``$DATE`` "Date (epoch) where the event happened",
  epoch ms; ``$ALERT_TRANSITION`` Triggered/Re-Triggered, Warn/Re-Warn, Recovered,
  Renotify; ``$ALERT_SCOPE`` the group; ``$TAGS``). Datadog "only issues a retry if ...
  Datadog receives a 5XX response" or a connection fails ("Missed connections are retried
  5 times"): a retry is the same request again, seconds later.
- docs.datadoghq.com/monitors/notify/: renotification "to remind your team that a problem
  is not solved", every ``renotify_interval`` while the monitor stays in alert.
- A query monitor (``avg(last_5m):... > threshold``, a warning threshold below it) is
  evaluated every minute: it triggers at the first evaluation after the window's average
  crossed (some minutes into the outage), warns first when the outage ramps up, and
  recovers at the first evaluation after the average fell back.

Half the webhooks use Hindsight's template, half Datadog's default payload (the
transition and the group then come from the title). What Hindsight must derive:
``started`` = the Triggered ``$DATE`` (the monitor cannot tell more), ``detected`` = its
first receipt (no send time), ``resolved`` = the Recovered ``$DATE``. Warnings open
nothing (TIMELINE.md rule 6); renotifications are repeats (rule 4).
"""

from __future__ import annotations

import copy
import random
from datetime import datetime, timedelta
from typing import Any

import orjson

from tests.fixtures import FIXTURES
from tests.scenarios.payloads import Recorded
from tests.simulation.tools.alertmanager import msec, uniform_ms
from tests.simulation.tools.uptimerobot import exact
from tests.simulation.world import Observation, Report, ServicePlan

SOURCE = "datadog"
_MINUTE = timedelta(minutes=1)


def _fixture(name: str) -> tuple[dict[str, str], dict[str, Any]]:
    raw = orjson.loads((FIXTURES / SOURCE / f"{name}.json").read_bytes())
    return dict(raw["headers"]), raw["body"]


_HEADERS, _TEMPLATE = _fixture("triggered")
_WORDS = {"Triggered": "error", "Re-Triggered": "error", "Warn": "warning",
          "Renotify": "error", "Recovered": "success"}


class Monitor:
    def __init__(self, plan: ServicePlan, rng: random.Random) -> None:
        self.rng = rng
        self.name = f"{plan.name} p95 latency above 2s"
        self.host = f"web-{rng.randint(1, 9)}"
        self.service = plan.name
        self.monitor_id = str(rng.randint(10_000_000, 199_999_999))
        self.default_payload = rng.random() < 0.5
        self.renotify = timedelta(minutes=rng.choice([0, 10, 30, 60]))
        self.phase = timedelta(milliseconds=rng.randrange(60_000))
        self.sent = 0

    @property
    def subject(self) -> str:
        return f"{self.name} {{host:{self.host}}}"

    def evaluation(self, after: datetime) -> datetime:
        """The first per-minute evaluation at or after ``after``."""
        base = after.replace(second=0, microsecond=0) + self.phase
        while base < after:
            base += _MINUTE
        return base

    def webhook(self, transition: str, at: datetime, cycle: str) -> list[Recorded]:
        rng = self.rng
        self.sent += 1
        word = "Triggered" if transition == "Renotify" else transition
        title = f"[{word} on {{host:{self.host}}}] {self.name}"
        date = str(msec(at))
        event_id = str(rng.getrandbits(62))
        if self.default_payload:
            body: dict[str, Any] = {"body": "%%%\nlatency\n%%%", "last_updated": date,
                                    "event_type": "query_alert_monitor", "title": title,
                                    "date": date, "org": {"id": "11023", "name": "Acme"},
                                    "id": event_id}
        else:
            body = copy.deepcopy(_TEMPLATE)
            body.update(title=title, alert_title=title, date=date, last_updated=date,
                        id=event_id, alert_id=self.monitor_id, alert_cycle_key=cycle,
                        alert_transition=transition, alert_type=_WORDS[transition],
                        alert_scope=f"host:{self.host}", hostname=self.host,
                        alert_status=f"{self.name} is {transition.lower()}",
                        tags=f"env:prod, host:{self.host}, service:{self.service}",
                        link=f"https://app.datadoghq.com/event/jump_to?event_id={event_id}")
        received = at + uniform_ms(rng, 0.5, 20.0)
        first = Recorded(SOURCE, received, dict(_HEADERS), orjson.dumps(body),
                         key=f"datadog-{self.monitor_id}-{self.sent}")
        out = [first]
        if rng.random() < 0.04:  # a missed connection, retried
            out.append(first.retried(received + uniform_ms(rng, 5, 60)))
        return out


def observe(plan: ServicePlan, rng: random.Random) -> Observation:
    monitor = Monitor(plan, rng)
    seen = Observation(services={plan.name: [exact(monitor.subject)]})
    for outage in plan.outages:
        crossed = outage.start + uniform_ms(rng, 20, 300)  # the 5-minute average
        triggered = monitor.evaluation(crossed)
        recovered = monitor.evaluation(outage.end + uniform_ms(rng, 20, 300))
        if triggered >= outage.end or triggered >= recovered:
            continue  # the average never crossed while it lasted
        cycle = str(rng.getrandbits(62))
        sent: list[Recorded] = []
        if rng.random() < 0.4 and triggered - outage.start > timedelta(minutes=2):
            sent += monitor.webhook("Warn", triggered - _MINUTE, cycle)  # ramping up
        failing = monitor.webhook("Triggered", triggered, cycle)
        sent += failing
        if monitor.renotify:
            repeat = triggered + monitor.renotify
            while repeat < recovered:
                sent += monitor.webhook("Renotify", repeat, cycle)
                repeat += monitor.renotify
        sent += monitor.webhook("Recovered", recovered, cycle)
        seen.deliveries += sent
        seen.reports.append(Report(outage=outage, monitor=monitor.subject, started=triggered,
                                   detected=min(d.received_at for d in failing),
                                   resolved=recovered))
    return seen


MODELS = {"datadog": observe}
