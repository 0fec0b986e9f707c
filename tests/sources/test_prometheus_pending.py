"""The alert rule's pending period learned from Prometheus (TIMELINE.md rule 8, second
paragraph; ingest/prometheus_pending.py).

Prometheus' answers follow its HTTP API documentation (prometheus/prometheus
``docs/querying/api.md`` v2.42.0, "Rules": ``data.groups[].rules[]`` with ``name``,
``duration`` (the rule's ``for``, seconds), ``labels``, ``type: alerting`` and
``alerts[]`` with ``labels``, ``state`` and ``activeAt``) and ``web/api/v1/api.go``
(``AlertingRule``, ``Alert``). The delivery is the documented Alertmanager fixture
``tests/fixtures/alertmanager/firing.json``.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ingest.prometheus_pending import (
    EVENT_TYPE,
    PendingLookup,
    firing_alerts,
    learn,
    pending_event,
    without_credentials,
)
from ingest.signals import Signal
from ingest.sources import alertmanager
from ingest.store import Appended, NewEvent
from tests.fixtures import load_fixture

FIXTURE = load_fixture("alertmanager", "firing")
BODY: dict[str, Any] = orjson.loads(FIXTURE.body)
FIRST = BODY["alerts"][0]
STARTS_AT = datetime(2025, 3, 14, 9, 58, 12, 345678, tzinfo=UTC)  # FIRST's startsAt
ACTIVE_AT = "2025-03-14T09:53:12.6060214+00:00"  # 5 min (its for) and ~0.3 s earlier


def rules_answer(*, alerts: list[dict[str, Any]] | None = None, duration: float = 300,
                 rule_labels: dict[str, str] | None = None,
                 name: str = "HighErrorRate") -> dict[str, Any]:
    """``GET /api/v1/rules`` as documented, for one alerting rule and one recording."""
    return {"status": "success", "data": {"groups": [{
        "name": "checkout", "file": "/etc/prometheus/rules/checkout.yaml",
        "interval": 30, "limit": 0,
        "rules": [
            {"name": name, "query": "sum by (service, instance) (...) > 0.05",
             "duration": duration, "labels": rule_labels or {"severity": "critical"},
             "annotations": {"summary": "5xx ratio above 5%"},
             "alerts": alerts if alerts is not None else [], "health": "ok",
             "type": "alerting"},
            {"name": "job:http_inprogress_requests:sum", "health": "ok",
             "query": "sum by (job) (http_inprogress_requests)", "type": "recording"},
        ]}]}}


def prometheus_alert(labels: dict[str, str], active_at: str = ACTIVE_AT,
                     state: str = "firing") -> dict[str, Any]:
    return {"labels": labels, "annotations": {"summary": "5xx ratio above 5%"},
            "state": state, "activeAt": active_at, "value": "1e+00"}


def signals() -> list[Signal]:
    return alertmanager.parse(FIXTURE.delivery())


def test_the_active_alert_with_the_same_labels_gives_its_active_at() -> None:
    answer = rules_answer(alerts=[prometheus_alert(dict(FIRST["labels"]))])
    learned = learn(answer, FIRST["labels"], STARTS_AT)
    assert learned is not None
    assert learned.learned_from == "active_alert"
    assert learned.pending_since == datetime(2025, 3, 14, 9, 53, 12, 606021, tzinfo=UTC)
    assert learned.active_at == learned.pending_since
    assert (learned.for_seconds, learned.rule, learned.group) == (300, "HighErrorRate",
                                                                  "checkout")
    assert learned.interval_seconds == 30


def test_external_labels_the_alert_lacks_in_prometheus_still_match() -> None:
    """notifier/notifier.go ``Send``: external labels are added to what Prometheus
    sends, so Alertmanager's labels are the rule alert's plus them."""
    delivered = {**FIRST["labels"], "cluster": "eu-1", "replica": "A"}
    answer = rules_answer(alerts=[prometheus_alert(dict(FIRST["labels"]))])
    learned = learn(answer, delivered, STARTS_AT)
    assert learned is not None
    assert learned.learned_from == "active_alert"


def test_the_most_specific_matching_alert_wins() -> None:
    broad = prometheus_alert({"alertname": "HighErrorRate", "severity": "critical"},
                             active_at="2025-03-14T08:00:00Z")
    exact = prometheus_alert(dict(FIRST["labels"]))
    other = prometheus_alert({**FIRST["labels"], "instance": "10.42.5.9:8080"},
                             active_at="2025-03-14T07:00:00Z")
    learned = learn(rules_answer(alerts=[broad, other, exact]), FIRST["labels"], STARTS_AT)
    assert learned is not None
    assert learned.active_at == datetime(
        2025, 3, 14, 9, 53, 12, 606021, tzinfo=UTC)


def test_a_later_firing_of_the_same_labels_falls_back_to_the_rules_for() -> None:
    """An ``activeAt`` after the delivered ``startsAt`` is another firing (the alert
    resolved and became active again): its rule's ``for`` still dates this one."""
    later = prometheus_alert(dict(FIRST["labels"]), active_at="2025-03-14T10:30:00Z",
                             state="pending")
    learned = learn(rules_answer(alerts=[later]), FIRST["labels"], STARTS_AT)
    assert learned is not None
    assert learned.learned_from == "rule_for"
    assert learned.pending_since == STARTS_AT - timedelta(minutes=5)
    assert learned.active_at is None


def test_an_alert_no_longer_active_is_dated_by_its_rules_for() -> None:
    learned = learn(rules_answer(alerts=[]), FIRST["labels"], STARTS_AT)
    assert learned is not None
    assert (learned.learned_from, learned.pending_since) == (
        "rule_for", STARTS_AT - timedelta(seconds=300))


def test_rules_of_the_same_name_are_told_apart_by_their_static_labels() -> None:
    answer = rules_answer(alerts=[])
    warning = copy.deepcopy(answer["data"]["groups"][0]["rules"][0])
    warning.update(duration=900, labels={"severity": "warning"})
    answer["data"]["groups"][0]["rules"].append(warning)
    learned = learn(answer, FIRST["labels"], STARTS_AT)  # severity critical: for 5m
    assert learned is not None
    assert learned.for_seconds == 300
    assert learn(answer, {**FIRST["labels"], "severity": "info"}, STARTS_AT) is None


def test_a_templated_rule_label_matches_any_value() -> None:
    answer = rules_answer(alerts=[], rule_labels={"severity": "{{ $labels.level }}"})
    learned = learn(answer, FIRST["labels"], STARTS_AT)
    assert learned is not None
    assert learned.for_seconds == 300


@pytest.mark.parametrize("answer", [
    rules_answer(alerts=[], duration=0),  # no for: no pending period
    rules_answer(alerts=[], name="SomethingElse"),
    {"status": "error", "errorType": "internal", "error": "boom"},
    {"status": "success", "data": {"groups": "not a list"}},
    [],
])
def test_nothing_is_learned_from_an_answer_that_says_nothing(answer: Any) -> None:
    assert learn(answer, FIRST["labels"], STARTS_AT) is None


def test_an_alert_active_since_it_fired_has_no_pending_period() -> None:
    """A rule without ``for`` fires at the evaluation that made it active."""
    at_once = prometheus_alert(dict(FIRST["labels"]), active_at="2025-03-14T09:58:12.345678Z")
    assert learn(rules_answer(alerts=[at_once], duration=0), FIRST["labels"],
                 STARTS_AT) is None


def test_firing_alerts_pair_each_firing_alert_with_its_signal_and_full_labels() -> None:
    found = firing_alerts("alertmanager", 7, FIXTURE.received_at, FIXTURE.body, signals())
    assert [f.signal.subject for f in found] == [a["fingerprint"] for a in BODY["alerts"]]
    assert [dict(f.labels) for f in found] == [a["labels"] for a in BODY["alerts"]]
    assert found[0].starts_at == STARTS_AT
    assert found[0].key == f"pending:alertmanager:edc7efd6ab2dbe0f@{'2025-03-14T09:58:12.345678Z'}"


def test_resolved_alerts_are_not_looked_up() -> None:
    resolved = load_fixture("alertmanager", "resolved")
    parsed = alertmanager.parse(resolved.delivery())
    assert firing_alerts("alertmanager", 1, resolved.received_at, resolved.body, parsed) == []


def test_the_event_carries_what_was_learned_where_and_the_signal_without_credentials(
) -> None:
    firing = firing_alerts("alertmanager", 7, FIXTURE.received_at, FIXTURE.body,
                           signals())[0]
    learned = learn(rules_answer(alerts=[prometheus_alert(dict(FIRST["labels"]))]),
                    firing.labels, firing.starts_at)
    assert learned is not None
    where = without_credentials("https://ops:hunter2@prom.example.com:9090/prom/?x=1")
    event = pending_event(firing, learned, where, datetime(2025, 3, 14, 10, tzinfo=UTC))
    assert where == "https://prom.example.com:9090/prom"
    assert event.type == EVENT_TYPE
    assert event.idempotency_key == firing.key
    assert event.data["delivery"] == 7
    assert event.data["index"] == 0
    assert event.data["active_at"] == "2025-03-14T09:53:12.606021Z"
    assert event.data["pending_since"] == event.data["active_at"]
    assert event.data["starts_at"] == "2025-03-14T09:58:12.345678Z"
    assert event.data["for_seconds"] == 300
    assert event.data["signal"]["subject"] == "edc7efd6ab2dbe0f"
    assert "hunter2" not in orjson.dumps(event.data).decode()


class FakeLog:
    def __init__(self) -> None:
        self.events: list[NewEvent] = []

    async def append(self, event: NewEvent) -> Appended:
        if any(e.idempotency_key == event.idempotency_key for e in self.events):
            return Appended(1, event.stream, 1, True)
        self.events.append(event)
        return Appended(len(self.events), event.stream, 1, False)


async def prometheus(answer: Any, *, delay: float = 0.0, seen: list[Any] | None = None
                     ) -> TestServer:
    async def rules(request: web.Request) -> web.Response:
        if seen is not None:
            seen.append(list(request.query.items()))
        await asyncio.sleep(delay)
        return web.json_response(answer)

    app = web.Application()
    app.router.add_get("/api/v1/rules", rules)
    server = TestServer(app)
    await server.start_server()
    return server


async def test_a_lookup_asks_for_alerting_rules_by_name_and_appends_once() -> None:
    seen: list[Any] = []
    server = await prometheus(rules_answer(alerts=[prometheus_alert(dict(FIRST["labels"]))]),
                              seen=seen)
    log = FakeLog()
    lookup = PendingLookup(log.append, str(server.make_url("/")))
    await lookup.start()
    try:
        for _ in range(3):  # the first delivery and two repeats of the same firing
            lookup.offer("alertmanager", 7, FIXTURE.received_at, FIXTURE.body, signals())
            await asyncio.wait_for(lookup.drain(), 5)
    finally:
        await lookup.close()
        await server.close()
    assert [e.data["subject"] for e in log.events] == ["edc7efd6ab2dbe0f", "a2bd7146b43d80d8"]
    assert [e.data["learned_from"] for e in log.events] == ["active_alert", "rule_for"]
    assert seen[0] == [("type", "alert"), ("rule_name[]", "HighErrorRate")]
    assert len(seen) == 2  # once per firing: the repeats asked nothing


async def test_a_slow_prometheus_costs_the_lookup_never_the_caller() -> None:
    server = await prometheus(rules_answer(alerts=[]), delay=3.0)
    log = FakeLog()
    lookup = PendingLookup(log.append, str(server.make_url("/")), timeout=0.2)
    await lookup.start()
    try:
        loop = asyncio.get_running_loop()
        began = loop.time()
        lookup.offer("alertmanager", 7, FIXTURE.received_at, FIXTURE.body, signals())
        assert loop.time() - began < 0.05  # offer only queues
        await asyncio.wait_for(lookup.drain(), 5)
    finally:
        await lookup.close()
        await server.close()
    assert log.events == []


async def test_an_unreachable_prometheus_is_logged_and_forgotten() -> None:
    log = FakeLog()
    lookup = PendingLookup(log.append, "http://127.0.0.1:9", timeout=0.5)
    await lookup.start()
    try:
        lookup.offer("alertmanager", 7, FIXTURE.received_at, FIXTURE.body, signals())
        await asyncio.wait_for(lookup.drain(), 5)
    finally:
        await lookup.close()
    assert log.events == []
    assert lookup.learned == {}  # a later repeat may ask again
