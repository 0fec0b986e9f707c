"""Grafana-managed alert rules sent by a webhook contact point.

Documented at grafana.com/docs/grafana/latest/alerting/configure-notifications/
manage-contact-points/integrations/webhook-notifier/ and read in grafana/alerting (main,
2026-08) and grafana/grafana ``pkg/services/ngalert``:

- evaluation: the scheduler ticks every base interval (10 s) aligned to the Unix epoch
  (``schedule/ticker`` ``getStartTick``); a rule with interval ``n`` x 10 s is evaluated
  on every n-th tick (with the optional jitter: a fixed whole-tick offset);
- state (``state/state.go`` ``resultAlerting``/``resultNormal``): Pending from the first
  evaluation the condition holds (``StartsAt`` = that evaluation), Alerting at the first
  evaluation with ``EvaluatedAt - StartsAt >= for`` (``SetAlerting(reason,
  result.EvaluatedAt, ...)``: startsAt = the firing evaluation); Normal again at the
  first evaluation where it does not hold, ``EndsAt`` = that evaluation. A pending alert
  that clears is never sent;
- notification: Grafana's embedded Alertmanager (the same dispatcher and dedup stage as
  Alertmanager: ``tests.simulation.tools.alertmanager.dispatch``), the default policy
  ``group_by: [grafana_folder, alertname]``, ``group_wait`` 30 s, ``group_interval``
  5 m, ``repeat_interval`` 4 h; resolved notifications unless ``disableResolveMessage``.
  The stored alert keeps its earliest ``StartsAt`` when the resolved state is merged in
  (alertmanager ``alert.Merge``), so a resolved alert shows its firing start;
- every evaluation re-sends the alert with its latest values (annotations ``__values__``
  / ``__value_string__``), so a repeat carries the values of the latest evaluation: the
  same bytes only when the value did not change;
- the body (``receivers/webhook/v1/webhook.go`` ``webhookMessage``, ``json.Marshal``:
  no trailing newline) is ``templates.ExtendedData`` then ``version`` "1",
  ``groupKey``, ``truncatedAlerts``, ``orgId``, ``title``, ``state``, ``message``; each
  alert ``templates.ExtendedAlert`` (``fingerprint`` over all labels, the private
  ``__alert_rule_uid__`` ones included, which are then removed from ``labels``). Times
  are Go ``time.Time`` in the server's zone;
- an HMAC-signing contact point with a timestamp header (``http/hmac.go``
  ``HMACRoundTripper``; the header name is the user's choice, the docs' example
  ``X-Grafana-Alerting-Timestamp``) sends the send time as Unix seconds, signed with the
  body; the signature header is a credential and is left out here (as in the fixtures).
  Without one, no send time is sent;
- the v1 webhook notifier returns ``retry=false`` on error: no retry.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from urllib.parse import quote
from zoneinfo import ZoneInfo

from tests.scenarios.payloads import Recorded
from tests.simulation.tools.alertmanager import (
    GO_ZERO_TIME,
    Flush,
    Life,
    Route,
    Rule,
    Sent,
    breakages,
    common,
    deliver,
    dispatch,
    go_json,
    go_time,
    label_set,
    report_from,
    uniform_ms,
)
from tests.simulation.world import Observation, ServicePlan

SOURCE = "grafana"
MODEL = "grafana"
BASE_INTERVAL = timedelta(seconds=10)
EXTERNAL_URL = "https://grafana.example.com/"
TIMESTAMP_HEADER = "X-Grafana-Alerting-Timestamp"
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata")


@dataclass(frozen=True)
class Setup:
    rule: Rule
    route: Route
    alertname: str
    folder: str
    rule_uid: str
    instances: tuple[str, ...]
    severity: str
    zone: str
    signs_time: bool  # an HMAC config with a timestamp header
    steady_values: bool  # the evaluated value does not change while firing


def draw_setup(rng: random.Random) -> Setup:
    ticks = rng.choice([1, 3, 6, 6, 30])  # 10 s, 30 s, 1 m (the default), 5 m
    interval = BASE_INTERVAL * ticks
    jitter = BASE_INTERVAL * rng.randrange(ticks) if rng.random() < 0.3 else timedelta(0)
    return Setup(
        rule=Rule(interval=interval, hold=timedelta(minutes=rng.choice([0, 1, 5])),
                  offset=jitter),
        route=Route(group_wait=timedelta(seconds=rng.choice([30, 30, 10, 60])),
                    group_interval=timedelta(minutes=rng.choice([5, 5, 1])),
                    repeat_interval=timedelta(minutes=rng.choice([240, 60, 20]))),
        alertname=rng.choice(["DiskIOSaturation", "ErrorBudgetBurn", "QueueBacklog"]),
        folder=rng.choice(["Databases", "Platform", "Shop"]),
        rule_uid="".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(14)),
        instances=tuple(sorted({f"node-{rng.randrange(1, 40)}.prod.example.com"
                                for _ in range(rng.randint(1, 3))})),
        severity=rng.choice(["critical", "warning"]),
        zone=rng.choice(ZONES),
        signs_time=rng.random() < 0.5,
        steady_values=rng.random() < 0.5,
    )


def grafana_lives(rng: random.Random, plan: ServicePlan, setup: Setup) -> list[Life]:
    lives: list[Life] = []
    for outage in plan.outages:
        for instance, (start, end) in sorted(breakages(rng, outage, setup.instances, setup.rule).items()):
            fired = setup.rule.firing(start, end)
            if fired is None:
                continue
            _, starts_at, ends_at = fired
            labels = {"__alert_rule_namespace_uid__": "shop-folder",
                      "__alert_rule_uid__": setup.rule_uid, "alertname": setup.alertname,
                      "grafana_folder": setup.folder, "instance": instance,
                      "service": plan.name, "severity": setup.severity}
            annotations = {"summary": f"{setup.alertname} on {instance}",
                           "runbook_url": "https://runbooks.example.com/grafana"}
            # The state manager hands alerts to the embedded Alertmanager in-process.
            lives.append(Life(
                labels=tuple(sorted(labels.items())),
                annotations=tuple(sorted(annotations.items())),
                outage=outage, starts_at=starts_at, ends_at=ends_at,
                seen=starts_at + uniform_ms(rng, 0.001, 0.2),
                seen_resolved=ends_at + uniform_ms(rng, 0.001, 0.2),
                generator_url=f"{EXTERNAL_URL}alerting/grafana/{setup.rule_uid}/view?orgId=1",
            ))
    return lives


def _public(life: Life) -> dict[str, str]:
    return {k: v for k, v in sorted(life.labels) if not k.startswith("__")}


def _values(rng: random.Random, setup: Setup, resolved: bool) -> dict[str, float]:
    """The latest evaluation's values (Go writes a float64 of 97 as ``97``)."""
    if resolved:
        b = 12.5 if setup.steady_values else round(rng.uniform(5, 80), 1)
    else:
        b = 97 if setup.steady_values else round(rng.uniform(91, 99.9), 1)
    return {"B": int(b) if b == int(b) else b, "C": 0 if resolved else 1}


def alert_json(rng: random.Random, setup: Setup, life: Life, resolved: bool,
               zone: tzinfo) -> dict[str, object]:
    """``templates.ExtendedAlert`` in field order."""
    labels = _public(life)
    values = _values(rng, setup, resolved)
    instance = labels.get("instance", "")
    matchers = "&".join(f"matcher={quote(f'{k}={v}', safe='')}" for k, v in labels.items())
    return {
        "status": "resolved" if resolved else "firing",
        "labels": labels,
        "annotations": dict(sorted(life.annotations)),
        "startsAt": go_time(life.starts_at, zone),
        "endsAt": go_time(life.ends_at, zone) if resolved else GO_ZERO_TIME,
        "generatorURL": life.generator_url,
        "fingerprint": life.fingerprint,
        "silenceURL": f"{EXTERNAL_URL}alerting/silence/new?alertmanager=grafana&{matchers}&orgId=1",
        "dashboardURL": f"{EXTERNAL_URL}d/ops?orgId=1",
        "panelURL": f"{EXTERNAL_URL}d/ops?orgId=1&viewPanel=4",
        "ruleUID": setup.rule_uid,
        "values": values,
        "valueString": ", ".join(f"[ var='{k}' labels={{instance={instance}}} value={v:g} ]"
                                 for k, v in values.items()),
    }


def _title(status: str, firing: int, resolved: int, group: Mapping[str, str],
           commons: Mapping[str, str]) -> str:
    """The default ``__subject`` template."""
    head = status.upper()
    if status == "firing":
        head += f":{firing}" + (f", RESOLVED:{resolved}" if resolved else "")
    title = f"[{head}] " + " ".join(group[k] for k in sorted(group)) + " "
    rest = [v for k, v in sorted(commons.items()) if k not in group]
    if len(commons) > len(group):
        title += "(" + " ".join(rest) + ")"
    return title


def _message(alerts: Sequence[dict[str, object]]) -> str:
    lines = []
    for alert in alerts:
        labels = alert["labels"]
        assert isinstance(labels, dict)
        lines.append(f"**{str(alert['status']).capitalize()}**\n\nValue: {alert['valueString']}"
                     "\nLabels:\n" + "".join(f" - {k} = {v}\n" for k, v in labels.items()))
    return "\n".join(lines)


def message_body(rng: random.Random, setup: Setup, plan: ServicePlan, flush: Flush) -> bytes:
    zone = ZoneInfo(setup.zone)
    group = {"alertname": setup.alertname, "grafana_folder": setup.folder}
    alerts = [alert_json(rng, setup, life, done, zone) for life, done in flush.alerts]
    publics = [_public(life) for life, _ in flush.alerts]
    commons = common(publics)
    firing = sum(1 for _, done in flush.alerts if not done)
    status = "firing" if firing else "resolved"
    group_key = ('{}/{__grafana_autogenerated__="true"}/{__grafana_receiver__="hindsight"}:'
                 + label_set(group))
    return go_json({
        "receiver": "hindsight",
        "status": status,
        "alerts": alerts,
        "groupLabels": group,
        "commonLabels": commons,
        "commonAnnotations": dict(sorted(common([dict(x.annotations) for x, _ in flush.alerts]).items())),
        "externalURL": EXTERNAL_URL,
        "version": "1",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "orgId": 1,
        "title": _title(status, firing, len(alerts) - firing, group, commons),
        "state": "alerting" if firing else "ok",
        "message": _message(alerts),
    })


def grafana(plan: ServicePlan, rng: random.Random, setup: Setup | None = None) -> Observation:
    """A Grafana-managed rule per instance, its default notification policy, and a webhook
    contact point to Hindsight."""
    setup = setup or draw_setup(rng)
    lives = grafana_lives(rng, plan, setup)
    sends: list[Sent] = []
    notified: dict[str, datetime] = {}
    for flush in dispatch(lives, setup.route):
        body = message_body(rng, setup, plan, flush)
        sent_at = flush.at + uniform_ms(rng, 0.001, 0.05)
        headers = {"Content-Type": "application/json", "User-Agent": "Grafana"}
        if setup.signs_time:
            seconds = int(sent_at.timestamp())  # clk.Now().Unix(): truncated to the second
            headers[TIMESTAMP_HEADER] = str(seconds)
        sent = deliver(rng, MODEL, SOURCE, flush, body, headers, 0.0, sent_at=sent_at)
        if setup.signs_time:
            for copy in sent.copies:
                notified[copy.key] = datetime.fromtimestamp(seconds, UTC)
        sends.append(sent)
    deliveries: list[Recorded] = [c for s in sends for c in s.copies]
    return Observation(deliveries=deliveries,
                       reports=report_from(MODEL, sends, plan.outages, notified))


MODELS = {"grafana": grafana}
