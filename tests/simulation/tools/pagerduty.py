"""PagerDuty V3 webhook subscriptions: incident.triggered, .acknowledged, .annotated and
.resolved, for incidents another monitor opened on a PagerDuty service.

Documented in PagerDuty/developer-docs (main, 2026-08): ``docs/webhooks/01-Overview.md``
(the payload: one ``event`` with ``id``, ``event_type``, ``resource_type``,
``occurred_at`` ISO 8601 with ms, ``agent``, ``client``, ``data``; the subscription's
``events`` and ``filter``) and ``docs/webhooks/02-Behavior.md``:

- "PagerDuty sends webhooks for a given extension and incident combination in the order
  that they were generated"; a delivery not answered with 2xx within 5 s is retried
  periodically, and "while attempting to retry a failing webhook, subsequent webhooks
  for this extension or subscription and resource ID will be queued";
- at-least-once: a duplicate carries the same ``X-Webhook-Id`` (and, being the same
  event, the same ``event.id`` and bytes).

The incident's own times: created when the triggering event is processed (``created_at``
in whole seconds, ``occurred_at`` with ms), acknowledged by a responder some time later
(never once resolved), resolved by the integration's resolve event or by the responder.

Two installations:

- ``pagerduty``: an upstream monitor Hindsight does not hear from (an integration that
  only pages) triggers and resolves the incident;
- ``prometheus-alertmanager-pagerduty``: Prometheus and Alertmanager with two routes
  (``continue: true``), Hindsight's webhook receiver and a ``pagerduty_config`` receiver
  (alertmanager ``notify/pagerduty``: Events API v2, ``dedup_key`` = the group key's
  hash, ``event_action`` "trigger" while any alert fires, "resolve" once all resolved;
  PagerDuty opens one incident per open dedup key). The PagerDuty route pages quickly
  (a short ``group_wait``) and the webhook route waits longer, so a responder's
  acknowledgement often reaches Hindsight before Alertmanager's own firing delivery
  (TIMELINE.md rule 11).

What Hindsight must derive (TIMELINE.md; the PagerDuty subject is the service, named
``<world service> on-call`` or ``<world service> alerts`` and mapped to the world's
service by a ``[services]`` glob, the configured mapping that wins): ``incident.triggered`` is a failing report of the
service (``occurred_at`` the incident's creation; no send time in the payload, so
notified when received), ``incident.resolved`` its recovery, and the acknowledgement's
``occurred_at`` is ``acknowledged_at`` ("from an on-call tool (PagerDuty)"). Notes carry
no signal.
"""

from __future__ import annotations

import copy
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import orjson

from tests.fixtures import FIXTURES
from tests.scenarios.payloads import Recorded, rfc3339
from tests.simulation.tools.alertmanager import (
    Life,
    Route,
    draw_setup,
    label_set,
    msec,
    prometheus_lives,
    report_from,
    uniform_ms,
    webhook_sends,
)
from tests.simulation.tools.alertmanager import dispatch as am_dispatch
from tests.simulation.world import Observation, Outage, Report, ServicePlan

SOURCE = "pagerduty"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TEMPLATES = {kind: orjson.loads((FIXTURES / SOURCE / f"incident_{kind}.json").read_bytes())
              for kind in ("triggered", "acknowledged", "resolved", "annotated")}


def ulid(rng: random.Random, at: datetime) -> str:
    """A ULID (PagerDuty's event and webhook ids): 48 bits of ms time, 80 random bits."""
    value = (msec(at) << 80) | rng.getrandbits(80)
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def pd_id(rng: random.Random, prefix: str = "P", size: int = 7) -> str:
    return prefix + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789")
                            for _ in range(size - len(prefix)))


@dataclass
class Incident:
    """One PagerDuty incident: when it was triggered, acknowledged, noted and resolved."""

    outage: Outage
    id: str
    number: int
    key: str
    title: str
    triggered: datetime
    resolved: datetime
    resolved_by_responder: bool
    acknowledged: datetime | None = None
    notes: list[datetime] = field(default_factory=list)


@dataclass(frozen=True)
class Account:
    """The PagerDuty service and people (names never reach a signal)."""

    service: str
    service_id: str
    responder_id: str
    client: str
    priority: str | None
    urgency: str


def _reference(kind: str, ident: str, summary: str, path: str) -> dict[str, str]:
    return {"html_url": f"https://acme.pagerduty.com/{path}/{ident}", "id": ident,
            "self": f"https://api.pagerduty.com/{path}/{ident}", "summary": summary,
            "type": kind}


def event_body(rng: random.Random, account: Account, incident: Incident, kind: str,
               at: datetime) -> dict[str, Any]:
    """A V3 event from the recorded fixtures, with this incident's values."""
    body: dict[str, Any] = copy.deepcopy(_TEMPLATES[kind]["body"])
    event = body["event"]
    event["id"] = ulid(rng, at)
    event["occurred_at"] = rfc3339(at)
    by_responder = kind in ("acknowledged", "annotated") or (
        kind == "resolved" and incident.resolved_by_responder)
    event["agent"] = (_reference("user_reference", account.responder_id, "On-call responder",
                                 "users") if by_responder else
                      _reference("service_reference", account.service_id, account.service,
                                 "services"))
    event["client"] = ({"name": account.client, "url": "https://monitoring.example.com/"}
                       if kind == "triggered" else None)
    service = _reference("service_reference", account.service_id, account.service,
                         "service-directory")
    if kind == "annotated":
        data = event["data"]
        data["incident"] = _reference("incident_reference", incident.id, incident.title,
                                      "incidents")
        data["id"] = pd_id(rng)
        data["content"] = "Rolling back the last deploy; error rate dropping."
        return body
    data = event["data"]
    data.update(
        id=incident.id,
        self=f"https://api.pagerduty.com/incidents/{incident.id}",
        html_url=f"https://acme.pagerduty.com/incidents/{incident.id}",
        number=incident.number,
        status=kind,
        incident_key=incident.key,
        created_at=rfc3339(incident.triggered.replace(microsecond=0)),
        title=incident.title,
        service=service,
        urgency=account.urgency,
    )
    if account.priority is None:
        data["priority"] = None
    else:
        data["priority"]["summary"] = account.priority
    return body


def webhooks(rng: random.Random, model: str, account: Account, incident: Incident,
             retry_chance: float = 0.05) -> list[Recorded]:
    """The incident's events in the order generated, each sent a moment after it
    happened, never overtaking the one before (nor its retries)."""
    events: list[tuple[datetime, str]] = [(incident.triggered, "triggered")]
    if incident.acknowledged is not None:
        events.append((incident.acknowledged, "acknowledged"))
    events += [(at, "annotated") for at in incident.notes]
    events.append((incident.resolved, "resolved"))
    events.sort(key=lambda e: e[0])
    subscription = pd_id(rng)
    out: list[Recorded] = []
    free = incident.triggered
    for at, kind in events:
        body = orjson.dumps(event_body(rng, account, incident, kind, at))
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "User-Agent": "PagerDuty-Webhook/V3.0",
                   "X-Webhook-Id": ulid(rng, at), "X-Webhook-Subscription": subscription}
        received = max(at + uniform_ms(rng, 0.3, 8.0), free + uniform_ms(rng, 0.05, 0.5))
        first = Recorded(SOURCE, received, headers, body, key=f"{model}:{ulid(rng, at)}")
        out.append(first)
        free = received
        if rng.random() < retry_chance:  # our 2xx did not reach PagerDuty within 5 s
            retry = first.retried(received + timedelta(seconds=5) + uniform_ms(rng, 0.5, 40.0))
            out.append(retry)
            free = retry.received_at
    return out


def acknowledge(rng: random.Random, incident: Incident, chance: float = 0.85) -> None:
    """A responder acknowledges some time after being paged, if before it resolves;
    sometimes leaves a note before it resolves."""
    if rng.random() < chance:
        delay = (uniform_ms(rng, 10, 90) if rng.random() < 0.5 else uniform_ms(rng, 90, 1200))
        if incident.triggered + delay < incident.resolved:
            incident.acknowledged = incident.triggered + delay
    if rng.random() < 0.3:
        after = incident.acknowledged or incident.triggered
        if incident.resolved - after > timedelta(seconds=2):
            note = after + uniform_ms(rng, 1, (incident.resolved - after).total_seconds())
            if note < incident.resolved:
                incident.notes.append(note)


def pd_reports(model: str, incidents: Sequence[Incident], sent: Sequence[Recorded]
               ) -> list[Report]:
    """Per outage: started = the first incident's ``occurred_at`` of triggering,
    detected = the earliest receipt of an ``incident.triggered`` delivery, resolved =
    the last ``incident.resolved`` time, acknowledged = the earliest acknowledgement."""
    triggered_at: dict[str, datetime] = {}
    for d in sent:
        event = orjson.loads(d.body)["event"]
        if event["event_type"] == "incident.triggered":
            ident = event["data"]["id"]
            triggered_at[ident] = min(triggered_at.get(ident, d.received_at), d.received_at)
    by_outage: dict[Outage, list[Incident]] = {}
    for incident in incidents:
        by_outage.setdefault(incident.outage, []).append(incident)
    reports = []
    for outage, group in by_outage.items():
        acks = [i.acknowledged for i in group if i.acknowledged is not None]
        reports.append(Report(
            outage, model,
            started=min(i.triggered for i in group),
            detected=min(triggered_at[i.id] for i in group),
            resolved=max(i.resolved for i in group),
            acknowledged=min(acks) if acks else None,
        ))
    return sorted(reports, key=lambda r: r.outage.index)


def draw_account(rng: random.Random, plan: ServicePlan, client: str, suffix: str) -> Account:
    """A PagerDuty service of its own per installation: two installations sharing one
    PagerDuty service would share one subject, and one incident's resolution would
    recover the other's (TIMELINE.md rule 3: a subject's state is its latest signal)."""
    return Account(service=f"{plan.name} {suffix}", service_id=pd_id(rng),
                   responder_id=pd_id(rng),
                   client=client, priority=rng.choice(["P1", "P2", None]),
                   urgency=rng.choice(["high", "high", "low"]))


def pagerduty(plan: ServicePlan, rng: random.Random) -> Observation:
    """Incidents an upstream monitor (one that does not notify Hindsight) opens and
    resolves through the Events API; Hindsight subscribes to the service's incidents."""
    model = "pagerduty"
    account = draw_account(rng, plan, rng.choice(["Datadog", "Pingdom", "New Relic"]),
                           "on-call")
    number = rng.randint(1000, 9000)
    incidents: list[Incident] = []
    for outage in plan.outages:
        lag = uniform_ms(rng, 30, 300)  # the upstream monitor's own detection window
        if outage.start + lag >= outage.end:
            continue  # recovered before the upstream monitor noticed: nothing paged
        triggered = outage.start + lag + uniform_ms(rng, 0.2, 3.0)
        by_responder = rng.random() < 0.3
        resolved = outage.end + (uniform_ms(rng, 60, 1800) if by_responder
                                 else uniform_ms(rng, 10, 180))
        number += 1
        incident = Incident(outage, pd_id(rng, "Q", 14), number, f"{rng.getrandbits(128):032x}",
                            f"{plan.name}: error rate above threshold", triggered, resolved,
                            by_responder)
        acknowledge(rng, incident)
        incidents.append(incident)
    sent = [d for i in incidents for d in webhooks(rng, model, account, i)]
    return Observation(deliveries=sent, reports=pd_reports(model, incidents, sent),
                       services={plan.name: [account.service]})


def pagerduty_route_incidents(rng: random.Random, plan: ServicePlan, lives: Sequence[Life],
                              route: Route, group_key: str) -> list[Incident]:
    """The incidents PagerDuty opens from Alertmanager's ``pagerduty_config`` receiver:
    a trigger opens one unless one is open for the dedup key; a resolve closes it."""
    dedup_key = hashlib.sha256(group_key.encode()).hexdigest()
    incidents: list[Incident] = []
    open_: Incident | None = None
    number = rng.randint(1000, 9000)
    for flush in am_dispatch(lives, route):
        processed = flush.at + uniform_ms(rng, 0.05, 1.0) + uniform_ms(rng, 0.2, 3.0)
        firing = any(not done for _, done in flush.alerts)
        if firing and open_ is None:
            number += 1
            open_ = Incident(flush.alerts[0][0].outage, pd_id(rng, "Q", 14), number, dedup_key,
                             f"[FIRING] {plan.name}", processed, processed, False)
        elif not firing and open_ is not None:
            open_.resolved = processed
            incidents.append(open_)
            open_ = None
    assert open_ is None, "every alert resolves before the world ends"
    return incidents


def prometheus_alertmanager_pagerduty(plan: ServicePlan, rng: random.Random) -> Observation:
    """Alertmanager notifies Hindsight's webhook and PagerDuty; Hindsight also subscribes
    to the PagerDuty service's incident events."""
    model = "prometheus-alertmanager-pagerduty"
    setup = draw_setup(rng)
    webhook_route = Route(group_wait=timedelta(seconds=rng.choice([30, 60, 120])),
                          group_interval=setup.route.group_interval,
                          repeat_interval=setup.route.repeat_interval)
    pager_route = Route(group_wait=timedelta(seconds=rng.choice([0, 5, 10])),
                        group_interval=timedelta(minutes=rng.choice([1, 5])),
                        repeat_interval=timedelta(hours=4))
    lives = prometheus_lives(rng, plan, setup)
    sends = webhook_sends(rng, model, plan, replace(setup, route=webhook_route), lives)
    group = {"alertname": setup.alertname, "service": plan.name}
    incidents = pagerduty_route_incidents(
        rng, plan, lives, pager_route, f'{{}}/{{service="{plan.name}"}}:{label_set(group)}')
    account = draw_account(rng, plan, "Alertmanager", "alerts")
    for incident in incidents:
        acknowledge(rng, incident)
    paged = [d for i in incidents for d in webhooks(rng, model, account, i)]
    return Observation(
        deliveries=[c for s in sends for c in s.copies] + paged,
        reports=(report_from(f"{model}/webhook", sends, plan.outages)
                 + pd_reports(f"{model}/pagerduty", incidents, paged)),
        services={plan.name: [account.service]},
    )


MODELS = {
    "pagerduty": pagerduty,
    "prometheus-alertmanager-pagerduty": prometheus_alertmanager_pagerduty,
}
