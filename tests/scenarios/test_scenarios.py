"""Incidents from recorded deliveries, end to end: imported through
``POST /v1/deliveries/import`` with their receipt times and real credentials, folded by
the live projector, read back through ``GET /v1/incidents``.

Every scenario runs twice: deliveries in the order they were received, and shuffled
(the same ``received_at`` values, another arrival order). The answers must be the same.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from ingest.signals import format_time
from ingest.sources.alertmanager import label_fingerprint
from tests.helpers import api_headers
from tests.scenarios.harness import (
    comparable,
    import_deliveries,
    incident,
    incidents,
    moments,
    only_incident,
    shuffled,
    timeline,
)
from tests.scenarios.payloads import (
    Alert,
    Recorded,
    alertmanager,
    at,
    github_deploy,
    healthchecks,
    kuma,
    uptimerobot_ssl,
)

SERVICES = {"checkout": ["Checkout API", "acme/checkout-service*"],
            "cart": ["Cart API", "acme/cart-service*"]}
ORDERS = pytest.mark.parametrize("order", ["as received", "shuffled"])


def monitor_of(service: str) -> str:
    """The Uptime Kuma monitor of a service's public API."""
    return f"{service.title()} API"


def arrange(deliveries: list[Recorded], order: str) -> list[Recorded]:
    return deliveries if order == "as received" else shuffled(deliveries, seed=20250314)


def s(offset: float, day: int = 0) -> Any:
    """2025-03-14 10:00 UTC + ``day`` days + ``offset`` seconds."""
    return at("2025-03-14T10:00:00Z") + timedelta(days=day, seconds=offset)


# --- An HTTP check, then an alert after group_wait, then recovery ---------------------

def http_check_then_alert(day: int = 0, service: str = "checkout") -> list[Recorded]:
    """Uptime Kuma sees 503s at 10:02:31.512 (after its retries) and notifies at once;
    the HighErrorRate rule fires at 10:03:00 (its ``for`` elapsed) and Alertmanager
    notifies after ``group_wait`` (30 s). The check is up at 10:19:31.498, the alert
    resolves at 10:21:00 and is notified at the next ``group_interval``."""
    alert = Alert("10.42.3.17:8080", s(180, day), service=service)
    monitor = monitor_of(service)
    return [
        kuma(False, s(151.512, day), s(152.004, day), monitor=monitor, service=service),
        alertmanager([alert], s(210.021, day)),
        kuma(True, s(1171.498, day), s(1171.960, day), monitor=monitor, service=service),
        alertmanager([Alert(alert.instance, alert.starts_at, s(1260, day), service=service)],
                     s(1503.880, day)),
    ]


@ORDERS
async def test_an_http_check_fails_first_and_an_alert_follows_after_group_wait(
    make_client: Any, order: str
) -> None:
    client = await make_client(projector=True)
    results = await import_deliveries(client, arrange(http_check_then_alert(), order))
    assert [r["status"] for r in results] == [202] * 4

    doc = await only_incident(client)
    assert moments(doc) == {
        "started_at": "2025-03-14T10:02:31.512Z",
        "detected_at": "2025-03-14T10:02:32.004Z",
        "acknowledged_at": None,
        "resolved_at": "2025-03-14T10:21:00Z",
        "detection_latency_seconds": pytest.approx(0.492),
        "duration_seconds": pytest.approx(1108.488),
        "status": "resolved",
        "severity": "P1",
        "detected_by": "monitor",
        "detection_verdict": "ok",
    }
    # TIMELINE.md: an alert's subject is its fingerprint (a hash of all its labels).
    alert = label_fingerprint({"alertname": "HighErrorRate", "instance": "10.42.3.17:8080",
                               "job": "checkout-api", "namespace": "shop",
                               "service": "checkout", "severity": "critical"})
    assert timeline(doc) == [
        ("2025-03-14T10:02:31.512Z", "started", "uptime-kuma", "Checkout API", "failing"),
        ("2025-03-14T10:02:32.004Z", "detected", "uptime-kuma", "Checkout API", "failing"),
        ("2025-03-14T10:03:00Z", None, "alertmanager", alert, "failing"),
        ("2025-03-14T10:19:31.498Z", None, "uptime-kuma", "Checkout API", "ok"),
        ("2025-03-14T10:21:00Z", "resolved", "alertmanager", alert, "ok"),
    ]
    assert [e["received_at"] for e in doc["timeline"]] == [
        "2025-03-14T10:02:32.004Z", "2025-03-14T10:02:32.004Z",
        "2025-03-14T10:03:30.021Z", "2025-03-14T10:19:31.96Z",
        "2025-03-14T10:25:03.88Z",
    ]


# --- A missed cron run ------------------------------------------------------------------

def missed_cron_run() -> list[Recorded]:
    """The nightly 02:00 Europe/Riga (00:00 UTC) reconciliation last pinged 2025-03-13
    00:00:07; Healthchecks flips it down after its 1 h grace (01:00:41) and up when it is
    re-run by hand (06:12:55)."""
    last = at("2025-03-13T00:00:07Z")
    return [
        healthchecks(False, at("2025-03-14T01:00:41Z"), at("2025-03-14T01:00:44.812Z"),
                     last_ping=last),
        healthchecks(True, at("2025-03-14T06:12:55Z"), at("2025-03-14T06:12:57.09Z"),
                     last_ping=at("2025-03-14T06:12:55Z")),
    ]


@ORDERS
async def test_a_missed_cron_run_starts_at_its_deadline_not_at_the_down_flip(
    make_client: Any, order: str
) -> None:
    """The grace period shows up as detection latency, over 30 min: critical."""
    client = await make_client(projector=True)
    await import_deliveries(client, arrange(missed_cron_run(), order))

    doc = await only_incident(client)
    assert doc["service"] == "payments"
    assert moments(doc) == {
        "started_at": "2025-03-14T00:00:00Z",
        "detected_at": "2025-03-14T01:00:44.812Z",
        "acknowledged_at": None,
        "resolved_at": "2025-03-14T06:12:55Z",
        "detection_latency_seconds": pytest.approx(3644.812),
        "duration_seconds": 22375.0,
        "status": "resolved",
        "severity": "P1",
        "detected_by": "monitor",
        "detection_verdict": "critical",
    }
    assert timeline(doc) == [
        ("2025-03-14T00:00:00Z", "started", "healthchecks", "payment-reconciliation", "failing"),
        ("2025-03-14T01:00:44.812Z", "detected", "healthchecks", "payment-reconciliation",
         "failing"),
        ("2025-03-14T06:12:55Z", "resolved", "healthchecks", "payment-reconciliation", "ok"),
    ]


# --- An expired certificate -------------------------------------------------------------

def expiring_then_expired_certificate() -> list[Recorded]:
    """UptimeRobot warns 13 days ahead, then reports the certificate expired: its
    ``notAfter`` was 2025-03-27 12:00, the alert came at 12:04."""
    expires = at("2025-03-27T12:00:00Z")
    return [
        uptimerobot_ssl(at("2025-03-14T06:00:00Z"), at("2025-03-14T06:00:09Z"), expires=expires),
        uptimerobot_ssl(at("2025-03-27T12:04:00Z"), at("2025-03-27T12:04:02.25Z"),
                        expires=expires),
    ]


@ORDERS
async def test_an_expired_certificate_fails_from_its_not_after(
    make_client: Any, database_url: str, order: str
) -> None:
    client = await make_client(projector=True)
    deliveries = arrange(expiring_then_expired_certificate(), order)
    await import_deliveries(client, deliveries)

    doc = await only_incident(client)
    assert doc["service"] == "www.example-shop.com"
    assert moments(doc) == {
        "started_at": "2025-03-27T12:00:00Z",
        "detected_at": "2025-03-27T12:04:02.25Z",
        "acknowledged_at": None,
        "resolved_at": None,
        "detection_latency_seconds": 242.25,
        "duration_seconds": None,
        "status": "open",
        "severity": "P3",
        "detected_by": "monitor",
        "detection_verdict": "ok",
    }
    assert timeline(doc) == [
        ("2025-03-27T12:00:00Z", "started", "uptimerobot", "www.example-shop.com", "failing"),
        ("2025-03-27T12:04:02.25Z", "detected", "uptimerobot", "www.example-shop.com",
         "failing"),
    ]


async def test_a_certificate_expiring_soon_is_a_risk_not_an_incident(
    make_client: Any, database_url: str
) -> None:
    client = await make_client(projector=True)
    await import_deliveries(client, expiring_then_expired_certificate()[:1])

    assert await incidents(client) == []
    conn = await asyncpg.connect(database_url)
    try:
        risks = await conn.fetch("SELECT service, subject, kind FROM service_risks")
    finally:
        await conn.close()
    assert [tuple(r) for r in risks] == [("www.example-shop.com", "www.example-shop.com", "ssl")]


# --- Deploys just before an outage ------------------------------------------------------

def deploys_before_an_outage(day: int = 0, service: str = "checkout") -> list[Recorded]:
    """A deploy of 4f2c9e1 fails at 09:40:12, the fix 9a0be77 is deployed at 09:58:05;
    four minutes later the checkout health check fails, and recovers at 10:19:31."""
    repo, monitor = f"acme/{service}-service", monitor_of(service)
    return [
        github_deploy("failure", "4f2c9e1b7d3a5c8e0f1a2b3c4d5e6f7081920a3b", s(-1188, day),
                      s(-1187.4, day), repo=repo),
        github_deploy("success", "9a0be77c2f414d1e8b6a3c5d7e9f0a1b2c3d4e5f", s(-115, day),
                      s(-114.1, day), repo=repo),
        kuma(False, s(151.512, day), s(152.004, day), monitor=monitor, service=service),
        kuma(True, s(1171.498, day), s(1171.960, day), monitor=monitor, service=service),
    ]


@ORDERS
async def test_deploys_just_before_an_outage_are_on_its_timeline_as_candidate_factors(
    make_client: Any, order: str
) -> None:
    client = await make_client(projector=True, services=SERVICES)
    await import_deliveries(client, arrange(deploys_before_an_outage(), order))

    doc = await only_incident(client)  # the deploys opened none
    assert doc["service"] == "checkout"
    assert moments(doc)["started_at"] == "2025-03-14T10:02:31.512Z"
    assert moments(doc)["resolved_at"] == "2025-03-14T10:19:31.498Z"
    subject = "acme/checkout-service/production"
    assert timeline(doc) == [
        ("2025-03-14T09:40:12Z", "deploy", "github", subject, "failing"),
        ("2025-03-14T09:58:05Z", "deploy", "github", subject, "info"),
        ("2025-03-14T10:02:31.512Z", "started", "uptime-kuma", "Checkout API", "failing"),
        ("2025-03-14T10:02:32.004Z", "detected", "uptime-kuma", "Checkout API", "failing"),
        ("2025-03-14T10:19:31.498Z", "resolved", "uptime-kuma", "Checkout API", "ok"),
    ]
    deploys = [e for e in doc["timeline"] if e["marker"] == "deploy"]
    assert [e["candidate_factor"] for e in deploys] == [True, True]
    assert "9a0be77" in deploys[1]["text"]


async def test_a_failed_deploy_alone_opens_no_incident(make_client: Any) -> None:
    client = await make_client(projector=True, services=SERVICES)
    await import_deliveries(client, deploys_before_an_outage()[:1])

    assert await incidents(client) == []


# --- An Alertmanager group resolving one alert at a time ---------------------------------

def group_resolving_one_by_one(day: int = 0, service: str = "checkout") -> list[Recorded]:
    """Three alerts of one group across three notifications (group_wait 30 s,
    group_interval 5 min), the second one retried identically 10 s later:

    - 10:00:30: A (since 10:00:00) and B (since 10:00:10) firing;
    - 10:05:30: A resolved at 10:05:00, B firing, C first seen already resolved
      (it fired from 10:02:00 to 10:04:00, between two notifications);
    - 10:05:40: the same notification again;
    - 10:10:30: B resolved at 10:10:00 (A still listed, resolved).
    """
    a, b, c = (Alert("10.42.3.17:8080", s(0, day), service=service),
               Alert("10.42.5.9:8080", s(10, day), service=service),
               Alert("10.42.7.2:8080", s(120, day), s(240, day), service=service))
    a_done = Alert(a.instance, a.starts_at, s(300, day), service=service)
    b_done = Alert(b.instance, b.starts_at, s(600, day), service=service)
    second = alertmanager([a_done, b, c], s(330, day))
    return [
        alertmanager([a, b], s(30, day)),
        second,
        second.retried(s(340, day)),
        alertmanager([a_done, b_done], s(630, day)),
    ]


@ORDERS
async def test_a_group_resolving_alert_by_alert_resolves_with_its_last_alert(
    make_client: Any, order: str
) -> None:
    client = await make_client(projector=True)
    deliveries = arrange(group_resolving_one_by_one(), order)
    results = await import_deliveries(client, deliveries)
    assert sorted(r["duplicate"] for r in results) == [False, False, False, True]

    doc = await only_incident(client)
    assert moments(doc) == {
        "started_at": "2025-03-14T10:00:00Z",
        "detected_at": "2025-03-14T10:00:30Z",
        "acknowledged_at": None,
        "resolved_at": "2025-03-14T10:10:00Z",
        "detection_latency_seconds": 30.0,
        "duration_seconds": 600.0,
        "status": "resolved",
        "severity": "P1",
        "detected_by": "monitor",
        "detection_verdict": "ok",
    }
    instance = [(e["at"], e["marker"], e["state"], e["attributes"].get("fingerprint"))
                for e in doc["timeline"]]
    assert [(t, m, st) for t, m, st, _ in instance] == [
        ("2025-03-14T10:00:00Z", "started", "failing"),      # A
        ("2025-03-14T10:00:10Z", None, "failing"),           # B
        ("2025-03-14T10:00:30Z", "detected", "failing"),     # A's notification
        ("2025-03-14T10:02:00Z", None, "failing"),           # C, seen after the fact
        ("2025-03-14T10:04:00Z", None, "ok"),                # C's end
        ("2025-03-14T10:05:00Z", None, "ok"),                # A
        ("2025-03-14T10:10:00Z", "resolved", "ok"),          # B, the last
    ]
    assert [e["name"].rsplit(" on ", 1)[1] for e in doc["timeline"]] == [
        "10.42.3.17:8080", "10.42.5.9:8080", "10.42.3.17:8080", "10.42.7.2:8080",
        "10.42.7.2:8080", "10.42.3.17:8080", "10.42.5.9:8080"]
    # A repeat is a failing report of a subject already failing (TIMELINE.md rule 4): B
    # was reported firing once more (one repeat); A was then only listed resolved, with
    # its startsAt, which ends its run and repeats nothing. The retried notification was
    # stored once and counted nowhere (it would make B's two).
    assert [e["repeats"] for e in doc["timeline"]] == [0, 1, 0, 0, 0, 0, 0]
    assert doc["signal_count"] == 7


# --- A user-reported outage, declared by hand ------------------------------------------

async def test_an_outage_declared_by_hand_was_detected_by_a_human(
    make_client: Any, database_url: str
) -> None:
    client = await make_client(projector=True)
    response = await client.post("/v1/incidents", headers=api_headers(), json={
        "service": "search", "title": "Customers report empty search results",
        "started_at": "2025-03-14T08:40:00Z",
        "summary": "Reported through the support desk",
    })
    assert response.status == 201, await response.text()
    created = await response.json()
    from tests.scenarios.harness import settle

    await settle(client)
    conn = await asyncpg.connect(database_url)
    try:
        declared = await conn.fetchval("SELECT recorded_at FROM events WHERE position = $1",
                                       created["event"])
    finally:
        await conn.close()

    doc = await incident(client, created["incident"])
    started = at("2025-03-14T08:40:00Z")
    assert moments(doc) == {
        "started_at": "2025-03-14T08:40:00Z",
        "detected_at": format_time(declared),  # the shortest exact form (format_time)
        "acknowledged_at": None,
        "resolved_at": None,
        "detection_latency_seconds": (declared - started).total_seconds(),
        "duration_seconds": None,
        "status": "open",
        "severity": "P3",
        "detected_by": "human",
        "detection_verdict": "critical",
    }
    assert [(e["marker"], e["source"]) for e in doc["timeline"]] == [
        ("started", "manual"), ("detected", "manual")]


# --- Flapping --------------------------------------------------------------------------

def flapping_check(day: int = 0, service: str = "checkout") -> list[Recorded]:
    """Down 10:00, up 10:03, down again 10:10 (within the 15 min reopen window), up
    10:14; then down at 10:40, 26 min after: a new incident."""
    out: list[Recorded] = []
    for down, up in ((0, 180), (600, 840), (2400, 2520)):
        out += [kuma(False, s(down, day), s(down + 0.4, day), monitor=monitor_of(service),
                     service=service),
                kuma(True, s(up, day), s(up + 0.4, day), monitor=monitor_of(service),
                     service=service)]
    return out


@ORDERS
async def test_a_check_flapping_within_the_reopen_window_reopens_its_incident(
    make_client: Any, order: str
) -> None:
    client = await make_client(projector=True)
    await import_deliveries(client, arrange(flapping_check(), order))

    later, first = await incidents(client)  # newest first
    assert (first["started_at"], first["resolved_at"]) == (
        "2025-03-14T10:00:00Z", "2025-03-14T10:14:00Z")
    assert first["duration_seconds"] == 840.0
    assert (later["started_at"], later["resolved_at"]) == (
        "2025-03-14T10:40:00Z", "2025-03-14T10:42:00Z")
    doc = await incident(client, first["id"])
    assert [(e["at"], e["marker"], e["state"]) for e in doc["timeline"]] == [
        ("2025-03-14T10:00:00Z", "started", "failing"),
        ("2025-03-14T10:00:00.4Z", "detected", "failing"),
        ("2025-03-14T10:03:00Z", None, "ok"),
        ("2025-03-14T10:10:00Z", None, "failing"),
        ("2025-03-14T10:14:00Z", "resolved", "ok"),
    ]


# --- Shuffled arrival: identical answers -----------------------------------------------

ALL: list[Callable[[], list[Recorded]]] = [
    http_check_then_alert,
    missed_cron_run,
    expiring_then_expired_certificate,
    lambda: deploys_before_an_outage(day=1, service="cart"),
    lambda: group_resolving_one_by_one(day=2, service="search"),
    lambda: flapping_check(day=3, service="inventory"),
]


async def answers(client: Any) -> list[dict[str, Any]]:
    listing = await incidents(client)
    return [comparable(await incident(client, i["id"])) for i in listing]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_every_scenario_together_gives_identical_answers_in_any_arrival_order(
    make_client: Any, second_client: Any, seed: int
) -> None:
    """All scenarios in one log (one service each), imported as received on
    one server and shuffled on another: every incident and timeline is the same but for
    the ids (named after whichever failure arrived first)."""
    deliveries = [d for build in ALL for d in build()]
    straight = await make_client(projector=True, services=SERVICES)
    await import_deliveries(straight, deliveries)
    mixed = await second_client(projector=True, services=SERVICES)
    await import_deliveries(mixed, shuffled(deliveries, seed))

    expected = await answers(straight)
    assert len(expected) == 7
    assert await answers(mixed) == expected
