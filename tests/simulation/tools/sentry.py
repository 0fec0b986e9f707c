"""Sentry, through an internal integration's webhooks: metric alerts on a project's error
count, and new issues (issue alerts and issue webhooks) resolved by the team.

What the model follows (getsentry/sentry-docs, docs/organization/integrations/
integration-platform/webhooks*.mdx; getsentry/sentry
``src/sentry/sentry_apps/api/serializers/app_platform_event.py``):

- every request carries ``Sentry-Hook-Timestamp``, Unix seconds at send time, and a new
  ``Request-ID``; the body is signed, not the timestamp. Sentry re-sends only a request
  that timed out or failed to connect (its 1 s response budget); Hindsight answers within
  it, so no retry is modelled.
- ``metric_alert``: a rule (``count()`` over ``time_window`` minutes, checked every
  minute) goes ``critical`` once the window's count crossed, with the incident's
  ``date_started``; ``resolved`` once it fell back, sent before Sentry closes the
  incident (``date_closed`` null, as documented), so Hindsight dates it at receipt.
- ``issue``: the outage's first error creates an issue (``created``, ``firstSeen``) and
  an issue alert rule fires on that event (``event_alert``, the event's ``datetime``);
  the team resolves the issue some time after the outage ended (``resolved``, no time in
  the payload: dated at receipt).

What Hindsight must derive (TIMELINE.md): started = ``date_started`` (metric) or
``firstSeen`` (issue); detected = the earliest ``Sentry-Hook-Timestamp`` of a failing
delivery (whole seconds); resolved = the resolution's receipt.
"""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tests.fixtures import FIXTURES
from tests.scenarios.payloads import Recorded
from tests.simulation.tools.alertmanager import uniform_ms
from tests.simulation.tools.uptimerobot import exact
from tests.simulation.world import Observation, Report, ServicePlan

SOURCE = "sentry"


def _fixture(name: str) -> tuple[dict[str, str], dict[str, Any]]:
    raw = orjson.loads((FIXTURES / SOURCE / f"{name}.json").read_bytes())
    return dict(raw["headers"]), raw["body"]


_METRIC = _fixture("metric_alert_critical")
_ISSUE = _fixture("issue_created")
_EVENT = _fixture("event_alert")


def _sent_at(delivery: Recorded) -> datetime:
    """What the delivery states as its send time: ``Sentry-Hook-Timestamp``, seconds."""
    return datetime.fromtimestamp(int(delivery.headers["Sentry-Hook-Timestamp"]), UTC)


def _send(rng: random.Random, headers: dict[str, str], body: dict[str, Any],
          sent: datetime, key: str) -> Recorded:
    out = dict(headers, **{"Request-ID": f"{rng.getrandbits(128):032x}",
                           "Sentry-Hook-Timestamp": str(int(sent.timestamp()))})
    received = sent + uniform_ms(rng, 0.02, 1.5)
    return Recorded(SOURCE, received, out, orjson.dumps(body), key=key)


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def metric_alerts(plan: ServicePlan, rng: random.Random) -> Observation:
    rule = f"{plan.name} errors"
    seen = Observation(services={plan.name: [exact(rule)]})
    window = timedelta(minutes=rng.choice([1, 5, 10]))
    for index, outage in enumerate(plan.outages):
        crossed = outage.start + uniform_ms(rng, 10, window.total_seconds())
        started = outage.start + uniform_ms(rng, 0, 5)
        if crossed >= outage.end:
            continue
        fell = outage.end + uniform_ms(rng, 10, window.total_seconds() + 60)
        deliveries = []
        for action, at in (("critical", crossed), ("resolved", fell)):
            headers, body = _METRIC[0], copy.deepcopy(_METRIC[1])
            body["action"] = action
            data = body["data"]
            data["description_title"] = f"{action.capitalize()}: {rule}"
            incident = data["metric_alert"]
            incident["alert_rule"]["name"] = rule
            incident["alert_rule"]["projects"] = [plan.name.lower()]
            incident.update(id=str(1000 + index), identifier=str(index + 1),
                            date_started=_stamp(started), date_detected=_stamp(crossed),
                            date_created=_stamp(crossed), date_closed=None,
                            status=20 if action == "critical" else 2)
            sent = at + uniform_ms(rng, 0.5, 30)
            deliveries.append(_send(rng, headers, body, sent,
                                    f"sentry-metric-{plan.name}-{index}-{action}"))
        seen.deliveries += deliveries
        seen.reports.append(Report(
            outage=outage, monitor=rule, started=started,
            detected=_sent_at(deliveries[0]),
            resolved=deliveries[1].received_at))
    return seen


def issues(plan: ServicePlan, rng: random.Random) -> Observation:
    project = plan.name.lower().replace(" ", "-")
    seen = Observation()
    subjects: list[str] = []
    for index, outage in enumerate(plan.outages):
        first = outage.start + uniform_ms(rng, 0.05, 20)
        if first >= outage.end:
            continue
        issue_id = str(rng.randint(1_000_000_000, 4_999_999_999))
        subject = f"Sentry issue {issue_id}"
        subjects.append(exact(subject))
        headers, issue_body = _ISSUE[0], copy.deepcopy(_ISSUE[1])
        issue = issue_body["data"]["issue"]
        issue.update(id=issue_id, firstSeen=_stamp(first), lastSeen=_stamp(first),
                     shortId=f"{project.upper()}-{index + 1}", project={
                         "id": "1", "name": project, "platform": "", "slug": project})
        created = _send(rng, headers, issue_body, first + uniform_ms(rng, 0.5, 10),
                        f"sentry-issue-{issue_id}-created")
        event_headers, event_body = _EVENT[0], copy.deepcopy(_EVENT[1])
        event = event_body["data"]["event"]
        event.update(issue_id=issue_id, datetime=_stamp(first), timestamp=first.timestamp(),
                     url=f"https://sentry.io/api/0/projects/acme/{project}/events/x/")
        alerted = _send(rng, event_headers, event_body, first + uniform_ms(rng, 0.5, 60),
                        f"sentry-issue-{issue_id}-alert")
        resolved_body = copy.deepcopy(issue_body)
        resolved_body["action"] = "resolved"
        resolved_body["data"]["issue"].update(status="resolved", substatus=None)
        resolved = _send(rng, headers, resolved_body, outage.end + uniform_ms(rng, 60, 3600),
                         f"sentry-issue-{issue_id}-resolved")
        seen.deliveries += [created, alerted, resolved]
        seen.reports.append(Report(outage=outage, monitor=subject, started=first,
                                   detected=min(_sent_at(created), _sent_at(alerted)),
                                   resolved=resolved.received_at))
    seen.services = {plan.name: subjects}
    return seen


MODELS = {"sentry-metric-alert": metric_alerts, "sentry-issue": issues}
