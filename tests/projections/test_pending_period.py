"""The alert rule's pending period in the fold (TIMELINE.md rule 8, second paragraph,
and rule 11): an ``alert.pending_period`` event moves the failure's start to the alert's
``activeAt`` (or ``startsAt − for``), detection stays the notification's receipt, and
the same log gives the same incidents whichever of the delivery and the learned event is
folded first. The delivery is the documented fixture
``tests/fixtures/alertmanager/firing.json``; the event is what
``ingest/prometheus_pending.py`` appends for a ``/api/v1/rules`` answer shaped as
Prometheus documents it (docs/querying/api.md, "Rules")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ingest.prometheus_pending import firing_alerts, learn, pending_event
from ingest.signals import Signal
from ingest.sources import alertmanager
from projections.drafts.analysis import detection_analysis
from projections.engine.facts import pending_signal
from projections.engine.fold import Engine, EngineConfig
from projections.engine.model import Incident
from tests.fixtures import load_fixture
from tests.projections.test_engine_properties import answers

FIXTURE = load_fixture("alertmanager", "firing")
ALERTS = orjson.loads(FIXTURE.body)["alerts"]
ACTIVE_AT = datetime(2025, 3, 14, 9, 53, 12, 606021, tzinfo=UTC)
DELIVERY, LEARNED = 10, 11  # log positions: the delivery, then what was learned


def delivery_signals() -> list[Signal]:
    return alertmanager.parse(FIXTURE.delivery())


def rules(active: bool) -> dict[str, Any]:
    alerts = [{"labels": ALERTS[0]["labels"], "annotations": {}, "state": "firing",
               "activeAt": "2025-03-14T09:53:12.606021Z", "value": "1e+00"}] if active else []
    return {"status": "success", "data": {"groups": [{"name": "checkout", "interval": 30,
            "file": "/rules.yaml", "rules": [{"name": "HighErrorRate", "type": "alerting",
            "duration": 300, "labels": {"severity": "critical"}, "alerts": alerts,
            "health": "ok", "query": "..."}]}]}}


def learned_data(active: bool = True) -> dict[str, Any]:
    firing = firing_alerts("alertmanager", DELIVERY, FIXTURE.received_at, FIXTURE.body,
                           delivery_signals())[0]
    learned = learn(rules(active), firing.labels, firing.starts_at)
    assert learned is not None
    event = pending_event(firing, learned, "http://prometheus:9090",
                          FIXTURE.received_at + timedelta(seconds=1))
    stored: dict[str, Any] = orjson.loads(orjson.dumps(event.data))  # as the log has it
    return stored


def fold(order: list[str], data: dict[str, Any] | None = None) -> Engine:
    engine = Engine(EngineConfig())
    pending = data or learned_data()
    for what in order:
        if what == "delivery":
            engine.apply_delivery(DELIVERY, FIXTURE.received_at, delivery_signals())
        else:
            engine.apply_delivery(LEARNED, FIXTURE.received_at, [pending_signal(pending)])
    engine.check_aggregates()
    return engine


def only(engine: Engine) -> Incident:
    [incident] = [i for i in engine.incidents() if i.merged_into is None]
    return incident


def test_the_failure_starts_when_the_rules_condition_began_to_hold() -> None:
    incident = only(fold(["delivery", "learned"]))
    assert incident.started_at == ACTIVE_AT
    assert incident.detected_at == FIXTURE.received_at  # detection: the notification
    assert incident.detection_latency_seconds == (
        FIXTURE.received_at - ACTIVE_AT).total_seconds()


def test_without_the_learned_event_the_failure_starts_at_starts_at() -> None:
    incident = only(fold(["delivery"]))
    assert incident.started_at == delivery_signals()[0].occurred_at


def test_a_rule_for_alone_dates_the_start_for_back_from_starts_at() -> None:
    incident = only(fold(["delivery", "learned"], learned_data(active=False)))
    assert incident.started_at == delivery_signals()[0].occurred_at - timedelta(minutes=5)


def test_the_learned_event_before_or_after_the_delivery_gives_the_same_incident() -> None:
    """Rule 11: order never changes an answer, ids included (the learned fact is the
    alert's own report, so its incident is named after the same firing)."""
    first, second = fold(["delivery", "learned"]), fold(["learned", "delivery"])
    assert answers(first) == answers(second)
    assert [i.id for i in first.incidents()] == [i.id for i in second.incidents()]
    assert only(second).started_at == ACTIVE_AT


def test_the_pending_period_is_no_repeat_and_opens_the_alerts_entry() -> None:
    """Rule 4 counts repeats of a failure; completing it with its pending period is not
    one: the entry opens at activeAt, says the rule waited, and counts no repeat."""
    incident = only(fold(["delivery", "learned"]))
    opened = [e for e in incident.timeline
              if e.subject == "edc7efd6ab2dbe0f" and e.state == "failing" and e.marker != "detected"]
    assert [(e.at, e.repeats) for e in opened] == [(ACTIVE_AT, 0)]
    assert "the rule waited for: 5m before firing" in opened[0].text
    assert opened[0].marker == "started"


def test_the_drafts_detection_analysis_names_the_pending_period() -> None:
    """TIMELINE.md rule 8: "the draft names the pending period (the rule waited
    `for: 5m` before firing) as it names a cron grace period"."""
    analysis = detection_analysis(only(fold(["learned", "delivery"])))
    assert "the rule waited `for: 5m` before firing" in analysis.first_detector_text
    plain = detection_analysis(only(fold(["delivery"])))
    assert "waited" not in plain.first_detector_text
