"""The uptime and job-check models (Uptime Kuma, UptimeRobot, Better Stack, Healthchecks,
Cronitor) keep their own promises, and the real ingest path accepts everything they send.

Two kinds of check:

- the Reports say what the bytes say: each test reads the payloads itself, by the tool's
  documentation and TIMELINE.md, and finds the Report's moments there;
- the real adapter (import line, authentication, ``understand``) accepts every delivery,
  gives each subject to the right service, and its signals agree with the Reports.
"""

from __future__ import annotations

import itertools
import random
import urllib.parse
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from cronsim import CronSim

from ingest.auth import Credentials, Request, authenticate
from ingest.delivery import Delivery, keep_headers
from ingest.signals import Signal
from ingest.sources import understand
from ingest.sources._common import multipart_fields
from ingest.webhooks import parse_import_line
from projections.engine.services import ServiceMap
from tests.helpers import SECRETS, TOKENS
from tests.scenarios.payloads import Recorded
from tests.simulation.tools import betterstack, cronitor, healthchecks, uptime_kuma, uptimerobot
from tests.simulation.world import EPOCH, Model, Observation, Report, ServicePlan, plan_outages

MODELS: dict[str, Model] = {**uptime_kuma.MODELS, **uptimerobot.MODELS, **betterstack.MODELS,
                            **healthchecks.MODELS, **cronitor.MODELS}
SEEDS = range(60)
DEDUP_WINDOW = timedelta(seconds=600)  # ARCHITECTURE.md "Idempotent appends"


def worlds(name: str) -> Iterator[tuple[ServicePlan, Observation]]:
    """Worlds all through the year (time zones change offset), each seed its own."""
    for seed in SEEDS:
        rng = random.Random(seed)
        begin = EPOCH + timedelta(days=(seed * 37) % 365, hours=rng.randrange(24))
        plan = plan_outages(rng, f"s{seed}-checkout", begin, days=rng.randint(3, 6))
        yield plan, MODELS[name](plan, random.Random(f"{name}:{seed}"))


_CACHE: dict[str, list[tuple[ServicePlan, Observation]]] = {}


def observed(name: str) -> list[tuple[ServicePlan, Observation]]:
    if name not in _CACHE:
        _CACHE[name] = list(worlds(name))
    return _CACHE[name]


def read(recorded: Recorded) -> tuple[str, list[Signal]]:
    """What ingest makes of the delivery, imported with the tool's own credential."""
    source, received_at, headers, query, body = parse_import_line(recorded.line())
    lower = {k.lower(): v for k, v in headers.items()}
    creds = Credentials(token=TOKENS.get(source), secrets=(SECRETS.get(source, ""),))
    problem = authenticate(source, Request(body, lower, query, received_at), creds, 300)
    assert problem is None, f"{recorded.key}: {problem}"
    understood = understand(Delivery(source, body, received_at, keep_headers(lower)))
    return understood.outcome, list(understood.signals)


def payload(recorded: Recorded) -> dict[str, Any]:
    """The body as the tool meant it: JSON, form parameters or Kuma's form-data field."""
    kind = recorded.headers.get("Content-Type", "")
    if kind == "application/x-www-form-urlencoded":
        return {k: v[-1] for k, v in urllib.parse.parse_qs(
            recorded.body.decode(), keep_blank_values=True).items()}
    raw = (multipart_fields(recorded.body, kind)["data"]
           if kind.startswith("multipart/form-data") else recorded.body)
    body: dict[str, Any] = orjson.loads(raw)
    return body


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def kuma_time(text: str) -> datetime:
    """Uptime Kuma's ``heartbeat.time``: UTC without a zone (TIMELINE.md)."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def owned(report: Report, deliveries: list[Recorded], at: Any) -> list[Recorded]:
    """The deliveries about ``report``'s outage: dated (by ``at``) from just before it
    starts until the outage gap, well past any recovery."""
    low = report.outage.start - timedelta(seconds=1)
    high = report.outage.end + timedelta(hours=29)
    return [d for d in deliveries if (when := at(d)) is not None and low <= when < high]


# --- Every model -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_delivery_is_authentic_and_understood(name: str) -> None:
    """API.md: an authentic delivery the adapter understands is answered 202; every copy
    of every delivery the model sends must be one."""
    seen = 0
    for _, observation in observed(name):
        for recorded in observation.deliveries:
            outcome, signals = read(recorded)
            assert outcome == "understood", (name, recorded.body[:300])
            assert signals, (name, recorded.body[:300])
            seen += 1
    assert seen > 50


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_subject_belongs_to_its_service(name: str) -> None:
    """TIMELINE.md "service": the configured ``[services]`` mapping wins, else the
    payload's own ``service`` tag; either way each signal is the plan's service's."""
    for plan, observation in observed(name):
        services = ServiceMap(observation.services)
        for recorded in observation.deliveries:
            for signal in read(recorded)[1]:
                assert services.service_of(signal) == plan.name, signal


@pytest.mark.parametrize("name", sorted(MODELS))
def test_reports_agree_with_the_adapters_signals(name: str) -> None:
    """TIMELINE.md "The four moments", read through the real adapter: per reported outage
    the failing signals of the monitor give the Report's start (earliest occurred_at),
    detection (earliest notified_at) and resolution (the first ok after the last
    failure, a recovery carrying its own start joining the failure); no failing signal
    falls outside a reported outage; warnings are never failures."""
    reported = 0
    for _, observation in observed(name):
        signals = [(r, s) for r in observation.deliveries for s in read(r)[1]]
        failing = [s for _, s in signals if s.state == "failing"]
        claimed: set[int] = set()
        for report in observation.reports:
            reported += 1
            low = report.outage.start - timedelta(seconds=1)
            high = report.outage.end + timedelta(hours=29)
            mine = [s for s in failing if low <= s.occurred_at < high]
            assert mine, report
            claimed.update(id(s) for s in mine)
            after_the_fact = [s.started_at for _, s in signals
                              if s.started_at is not None and low <= s.started_at < high]
            assert report.started == min([s.occurred_at for s in mine] + after_the_fact)
            assert report.detected == min(s.notified_at for s in mine)
            last = max(s.occurred_at for s in mine)
            oks = [s.occurred_at for _, s in signals if s.state == "ok" and s.kind != "ssl"
                   and s.occurred_at >= last]
            assert report.resolved == min(oks)
        assert all(id(s) in claimed for s in failing), "a failing signal with no report"
    assert reported > 20


@pytest.mark.parametrize("name", sorted(MODELS))
def test_report_moments_are_ordered_whole_milliseconds(name: str) -> None:
    """world.py: times the models put in payloads are whole ms or coarser, and Reports use
    the same values; a failure starts at or before it is detected (a tool notifies after
    it saw the failure) and resolves after the outage ends; one Report per outage."""
    for _, observation in observed(name):
        for report in observation.reports:
            assert report.resolved is not None
            moments = [report.started, report.detected, report.resolved]
            if report.acknowledged is not None:
                moments.append(report.acknowledged)
                assert report.detected <= report.acknowledged < report.resolved
            assert all(at.microsecond % 1000 == 0 and at.utcoffset() == timedelta(0)
                       for at in moments)
            assert report.outage.start - timedelta(seconds=1) <= report.started
            assert report.started <= report.detected
            assert report.resolved >= report.outage.end
        assert all(r.received_at.microsecond % 1000 == 0 for r in observation.deliveries)
        keys = [r.outage.key for r in observation.reports]
        assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_world_is_reproducible_from_its_seed(name: str) -> None:
    """The property replays failures by seed: the same seed gives the same bytes."""
    plan = plan_outages(random.Random(7), "s7-checkout", EPOCH, days=4)
    first = MODELS[name](plan, random.Random(11))
    again = MODELS[name](plan, random.Random(11))
    assert [r.line() for r in first.deliveries] == [r.line() for r in again.deliveries]
    assert first.reports == again.reports


@pytest.mark.parametrize("name", sorted(MODELS))
def test_retries_repeat_the_same_bytes_within_the_retry_window(name: str) -> None:
    """A retry (``retry_of``) is the same request again, after the attempt it repeats and
    within the dedup window (ARCHITECTURE.md); only Healthchecks retries here
    (hc/api/transports.py: up to 3 tries)."""
    retries = 0
    for _, observation in observed(name):
        by_key = {r.key: r for r in observation.deliveries}
        assert len(by_key) == len(observation.deliveries)
        for recorded in observation.deliveries:
            if recorded.retry_of is None:
                continue
            first = by_key[recorded.retry_of]
            root = first
            while root.retry_of is not None:
                root = by_key[root.retry_of]
            assert (recorded.body, recorded.headers) == (first.body, first.headers)
            assert first.received_at < recorded.received_at < root.received_at + DEDUP_WINDOW
            retries += 1
    assert (retries > 0) == (name == "healthchecks")


# --- Uptime Kuma (server/model/monitor.js) -------------------------------------------


def test_kuma_reports_are_its_important_beats_and_reminders_repeat() -> None:
    """monitor.js: the DOWN notification is the important beat (UP/PENDING -> DOWN) and its
    ``heartbeat.time`` (zoneless UTC, ms) is the start; reminders every ``resendInterval``
    DOWN beats are the same monitor with ``important: false`` and later times; the UP
    notification's time is the resolution and names the DOWN beat as ``lastDownTime``;
    PENDING beats are never sent."""
    reminders = forms = 0
    for _, observation in observed("uptime-kuma"):
        beats = [(r, payload(r)) for r in observation.deliveries]
        forms += sum(r.headers["Content-Type"].startswith("multipart/") for r, _ in beats)
        assert all(b["heartbeat"]["status"] in (0, 1) for _, b in beats)
        for report in observation.reports:
            mine = owned(report, [r for r, _ in beats],
                          lambda r: kuma_time(payload(r)["heartbeat"]["time"]))
            down = [(r, payload(r)["heartbeat"]) for r in mine
                    if payload(r)["heartbeat"]["status"] == 0]
            up = [payload(r)["heartbeat"] for r in mine if payload(r)["heartbeat"]["status"] == 1]
            important = [(r, b) for r, b in down if b["important"]]
            assert len(important) == 1
            assert len(up) == 1
            assert kuma_time(important[0][1]["time"]) == report.started
            assert important[0][0].received_at == report.detected
            for _, beat in down:
                if not beat["important"]:
                    reminders += 1
                    assert kuma_time(beat["time"]) > report.started
            assert kuma_time(up[0]["time"]) == report.resolved
            assert up[0]["lastDownTime"] == important[0][1]["time"]
    assert reminders > 0
    assert forms > 0


# --- UptimeRobot (help.uptimerobot.com "Webhook Integration") -------------------------


def test_uptimerobot_reports_are_its_alert_times_and_ssl_reminders_only_warn() -> None:
    """*alertDateTime* (Unix seconds) of the down alert is the start, of the up alert the
    resolution, and the up alert's *alertDuration* spans the two; SSL expiry reminders
    (*alertType* 3) leave days on the certificate and are warnings (TIMELINE.md rule 6)."""
    ssl = 0
    for _, observation in observed("uptimerobot"):
        alerts = [(r, payload(r)) for r in observation.deliveries]
        for recorded, body in alerts:
            if body["alertType"] == "3":
                ssl += 1
                assert int(body["sslExpiryDaysLeft"]) >= 1
                assert utc(body["sslExpiryDate"]) > datetime.fromtimestamp(
                    int(body["alertDateTime"]), UTC)
                assert [s.state for s in read(recorded)[1]] == ["warning"]
        for report in observation.reports:
            mine = owned(report, [r for r, b in alerts if b["alertType"] != "3"],
                          lambda r: datetime.fromtimestamp(int(payload(r)["alertDateTime"]),
                                                           UTC))
            down = [(r, b) for r, b in ((r, payload(r)) for r in mine) if b["alertType"] == "1"]
            up = [payload(r) for r in mine if payload(r)["alertType"] == "2"]
            assert len(down) == 1
            assert len(up) == 1
            assert datetime.fromtimestamp(int(down[0][1]["alertDateTime"]), UTC) == report.started
            assert down[0][0].received_at == report.detected
            assert datetime.fromtimestamp(int(up[0]["alertDateTime"]), UTC) == report.resolved
            assert int(up[0]["alertDuration"]) == int(up[0]["alertDateTime"]) - int(
                down[0][1]["alertDateTime"])
    assert ssl > 0


# --- Better Stack (betterstack.com/docs/uptime/webhooks/) -----------------------------


def test_betterstack_reports_are_the_incident_times_and_ssl_incidents_open_nothing() -> None:
    """Each webhook repeats the incident: ``started_at`` is the start, ``resolved_at`` the
    resolution, and ``acknowledged_at`` (the acknowledgement's own time, issue 10 defect
    3) the acknowledgement; SSL expiration incidents, acknowledged and resolved or not,
    never fail (TIMELINE.md rule 6) and are in no Report."""
    acks = ssl_resolved = 0
    for _, observation in observed("betterstack"):
        by_incident: dict[str, list[tuple[Recorded, dict[str, Any]]]] = defaultdict(list)
        for recorded in observation.deliveries:
            data = payload(recorded)["data"]
            by_incident[data["id"]].append((recorded, data["attributes"]))
        reported = {r.started: r for r in observation.reports}
        for hooks in by_incident.values():
            first = hooks[0][1]
            assert all(a["started_at"] == first["started_at"] for _, a in hooks)
            if "SSL" in first["cause"]:
                assert utc(first["started_at"]) not in reported
                for recorded, attributes in hooks:
                    ssl_resolved += attributes["status"] == "Resolved"
                    assert all(s.state != "failing" and s.started_at is None
                               for s in read(recorded)[1])
                continue
            report = reported[utc(first["started_at"])]
            assert next(a["status"] for _, a in hooks) == "Started"
            assert hooks[0][0].received_at == report.detected
            resolved = [a for _, a in hooks if a["status"] == "Resolved"]
            assert len(resolved) == 1
            assert utc(resolved[0]["resolved_at"]) == report.resolved
            acked = [a for _, a in hooks if a["status"] == "Acknowledged"]
            if acked:
                acks += 1
                assert utc(acked[0]["acknowledged_at"]) == report.acknowledged
                assert resolved[0]["acknowledged_at"] == acked[0]["acknowledged_at"]
            else:
                assert report.acknowledged is None
    assert acks > 0
    assert ssl_resolved > 0


# --- Healthchecks (hc/api/models.py, hc/integrations/webhook/transport.py) ------------


def _cron_of(schedule: str) -> str:
    return dict(healthchecks.ONCALENDAR).get(schedule, schedule)


def test_healthchecks_down_payloads_are_what_healthchecks_sends() -> None:
    """``Check.to_dict`` at notification time: a down check's ``next_ping`` is null
    (``get_grace_start`` is None unless up; issue 10 defect 9), an up check's is the next
    deadline; ``started`` is true only for a run that sent /start and never finished;
    ``$NOW`` is the flip to the second with ``+00:00``. Every kind (simple, cron,
    OnCalendar) and every failure (missed, /fail, hung) occurs."""
    kinds, failures = set(), set()
    for _, observation in observed("healthchecks"):
        for recorded in observation.deliveries:
            body = payload(recorded)
            check = body["check"]
            assert body["now"].endswith("+00:00")
            assert "." not in body["now"]
            assert check["status"] == body["status"]
            if body["status"] == "down":
                assert check["next_ping"] is None
                kind = ("simple" if "timeout" in check else
                        "oncalendar" if check["schedule"] in dict(healthchecks.ONCALENDAR)
                        else "cron")
                kinds.add(kind)
                failures.add("hung" if check["started"] else
                             "fail" if check["last_ping"] == body["now"] else "missed")
            else:
                assert check["next_ping"] is not None
                assert check["started"] is False
                assert check["last_ping"] == body["now"]
    assert kinds == {"simple", "cron", "oncalendar"}
    assert failures == {"missed", "fail", "hung"}


def test_healthchecks_failures_start_at_the_missed_run() -> None:
    """TIMELINE.md rule 8: from the payload's ``last_ping`` and its ``schedule`` in ``tz``
    (cron or OnCalendar) or ``timeout``, the first deadline after the last ping is the
    start when it is not after the down time ``$NOW`` (a missed or hung run: then also
    ``$NOW - grace``, as Healthchecks flips at the grace period's end, and for a
    schedule a tick inside the outage); otherwise (a /fail) the start is ``$NOW``. The
    resolution is the up notification's ``$NOW``."""
    missed = 0
    for _, observation in observed("healthchecks"):
        firsts = [r for r in observation.deliveries if r.retry_of is None]
        for report in observation.reports:
            mine = owned(report, firsts, lambda r: utc(payload(r)["now"]))
            down = [payload(r) for r in mine if payload(r)["status"] == "down"]
            up = [payload(r) for r in mine if payload(r)["status"] == "up"]
            assert len(down) == 1
            assert len(up) == 1
            body, check = down[0], down[0]["check"]
            now, last_ping = utc(body["now"]), utc(check["last_ping"])
            if "timeout" in check:
                deadline = last_ping + timedelta(seconds=check["timeout"])
            else:
                local = last_ping.astimezone(ZoneInfo(check["tz"]))
                deadline = next(CronSim(_cron_of(check["schedule"]), local)).astimezone(UTC)
            if deadline <= now:
                missed += 1
                assert report.started == deadline == now - timedelta(seconds=check["grace"])
                assert report.outage.start <= deadline < report.outage.end
            else:
                assert report.started == now == last_ping
            assert report.resolved == utc(up[0]["now"])
            assert mine[0].received_at == report.detected
    assert missed > 0


# --- Cronitor (cronitor.io/docs/using-webhooks) ---------------------------------------


def test_cronitor_sends_identical_bodies_for_outages_days_apart() -> None:
    """The payload has no time: the ALERT's receipt is the start and the detection and
    the RECOVERY's the resolution (TIMELINE.md ``time_source: receipt``). A job failing
    on two days sends the same bytes (issue 10 defect 1), far outside the dedup window:
    two outages, two Reports. Reminders (``realert_interval``) repeat the same bytes."""
    identical = repeats = 0
    for _, observation in observed("cronitor"):
        alerts: dict[bytes, list[Recorded]] = defaultdict(list)
        for recorded in observation.deliveries:
            body = payload(recorded)
            signals = read(recorded)[1]
            assert all(s.time_source == "receipt" for s in signals)
            if body["type"] == "ALERT":
                alerts[recorded.body].append(recorded)
        for report in observation.reports:
            mine = owned(report, observation.deliveries, lambda r: r.received_at)
            kinds = [(payload(r)["type"], r.received_at) for r in mine]
            failing = [at for kind, at in kinds if kind == "ALERT"]
            recovered = [at for kind, at in kinds if kind == "RECOVERY"]
            assert report.started == report.detected == min(failing)
            assert report.resolved is not None
            assert recovered == [report.resolved]
            assert max(failing) < report.resolved
        for copies in alerts.values():
            outages = {r.outage.key for r in observation.reports for c in copies
                       if r.resolved is not None and r.started <= c.received_at < r.resolved}
            repeats += len(copies) - len(outages)
            if len(outages) > 1:
                identical += 1
                times = sorted(c.received_at for c in copies)
                assert all(b - a > DEDUP_WINDOW for a, b in itertools.pairwise(times))
    assert identical > 0
    assert repeats > 0
