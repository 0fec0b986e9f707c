"""Opsgenie alerts, opened by an upstream integration, sent to Hindsight through the
outgoing Webhook integration.

What the model follows:

- docs.opsgenie.com/docs/webhook-integration: one POST per alert action mapped to the
  webhook (created, acknowledged, closed; notes carry nothing for Hindsight), with the
  alert action data of docs.opsgenie.com/docs/alert-action-data: ``createdAt`` in epoch
  milliseconds, ``updatedAt`` in epoch nanoseconds (the documented samples), the same
  ``alias`` on every action. No retry policy is documented for this integration, so none
  is modelled; each action is sent a moment after it happened, in order.
- The alert's life: an upstream monitor (not connected to Hindsight) creates it some
  time into the outage; a responder acknowledges it after being paged, if it is still
  open; the upstream monitor's close (or the responder) closes it after the outage.

What Hindsight must derive (TIMELINE.md): started = ``createdAt`` of Create, detected =
its receipt (no send time), acknowledged = the Acknowledge ``updatedAt``, resolved = the
Close ``updatedAt``. Subjects are aliases, mapped to the world's service by ``[services]``.
"""

from __future__ import annotations

import copy
import random
import uuid
from datetime import datetime
from typing import Any

import orjson

from tests.fixtures import FIXTURES
from tests.scenarios.payloads import Recorded
from tests.simulation.tools.alertmanager import msec, uniform_ms
from tests.simulation.tools.uptimerobot import exact
from tests.simulation.world import Observation, Report, ServicePlan

SOURCE = "opsgenie"


def _template() -> tuple[dict[str, str], dict[str, Any]]:
    raw = orjson.loads((FIXTURES / SOURCE / "create.json").read_bytes())
    return dict(raw["headers"]), raw["body"]


_HEADERS, _TEMPLATE = _template()
_ACTIONS = {"create": "Create", "acknowledge": "Acknowledge", "note": "AddNote",
            "close": "Close"}


def _nanos(at: datetime) -> int:
    return msec(at) * 1_000_000 + at.microsecond % 1000 * 1000


def observe(plan: ServicePlan, rng: random.Random) -> Observation:
    alias = f"{plan.name} error rate"
    seen = Observation(services={plan.name: [exact(alias)]})
    tiny = rng.randint(10, 900)
    for outage in plan.outages:
        created = outage.start + uniform_ms(rng, 30, 300)
        if created >= outage.end:
            continue  # recovered before the upstream monitor noticed
        closed = outage.end + uniform_ms(rng, 5, 600)
        tiny += 1
        alert_id = str(uuid.UUID(int=rng.getrandbits(128)))
        actions: list[tuple[datetime, str]] = [(created, "create")]
        acknowledged = None
        if rng.random() < 0.8:
            at = created + uniform_ms(rng, 20, 1500)
            if at < closed:
                acknowledged = at
                actions.append((at, "acknowledge"))
        if rng.random() < 0.3:
            actions.append((created + (closed - created) / 2, "note"))
        actions.append((closed, "close"))
        actions.sort()
        free = created
        sent: list[Recorded] = []
        for at, action in actions:
            body = copy.deepcopy(_TEMPLATE)
            body["action"] = _ACTIONS[action]
            body["alert"].update(alertId=alert_id, alias=alias, tinyId=str(tiny),
                                 message=f"{plan.name}: error rate above 5%",
                                 createdAt=msec(created), updatedAt=_nanos(at),
                                 tags=["prod", f"team-{plan.name}"])
            received = max(at + uniform_ms(rng, 0.2, 6.0), free + uniform_ms(rng, 0.01, 0.2))
            free = received
            sent.append(Recorded(SOURCE, received, dict(_HEADERS), orjson.dumps(body),
                                 key=f"opsgenie-{alert_id}-{action}"))
        seen.deliveries += sent
        seen.reports.append(Report(outage=outage, monitor=alias, started=created,
                                   detected=sent[0].received_at, resolved=closed,
                                   acknowledged=acknowledged))
    return seen


MODELS = {"opsgenie": observe}
