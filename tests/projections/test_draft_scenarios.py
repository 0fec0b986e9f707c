"""Incidents built by hand for the draft tests, as the engine would produce them.

Each scenario is a realistic incident (TIMELINE.md): the deploy before an outage, a missed
cron run, an expired certificate, an outage an engineer declared, and a P1 detected 12
minutes late. The tests in this module check that the scenarios themselves are
consistent, so a draft test never passes on an impossible incident.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from projections.engine.action_items import ActionItem
from projections.engine.model import Incident, TimelineEntry


def t(text: str) -> datetime:
    """``"2026-03-01T10:03:00"`` as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def entry(
    at: str,
    *,
    received: str | None = None,
    position: int,
    source: str,
    kind: str,
    subject: str,
    state: str,
    text: str,
    marker: str | None = None,
    **extra: object,
) -> TimelineEntry:
    return TimelineEntry(
        at=t(at),
        received_at=t(received or at),
        position=position,
        marker=marker,  # type: ignore[arg-type]
        source=source,
        kind=kind,  # type: ignore[arg-type]
        subject=subject,
        state=state,  # type: ignore[arg-type]
        text=text,
        **extra,  # type: ignore[arg-type]
    )


def _seconds(later: datetime | None, earlier: datetime) -> float | None:
    return None if later is None else (later - earlier).total_seconds()


# --- An HTTP check, then an Alertmanager alert after group_wait, after a deploy -------

CHECKOUT_ALERT = 'HighErrorRate{instance="10.0.4.17:9100", job="checkout-api"}'
CHECKOUT_ALERT_NAME = "HighErrorRate on 10.0.4.17:9100"  # as texts show it
CHECKOUT_URL = "https://checkout.example.com/health"


def checkout_outage() -> Incident:
    """A deploy of 4f2c9e1 finishes at 10:00:50; at 10:03:00 the uptime check of the
    public endpoint fails (notified at once), the error-rate alert starts at 10:03:30 and
    is notified after its 30 s group_wait; PagerDuty is acknowledged, an engineer notes a
    rollback, the rollback deploys, both checks recover."""
    started, detected = t("2026-03-01T10:03:00"), t("2026-03-01T10:03:02")
    acknowledged, resolved = t("2026-03-01T10:05:00"), t("2026-03-01T10:25:00")
    timeline = (
        entry("2026-03-01T10:00:50", received="2026-03-01T10:00:51", position=101,
              source="github", kind="deploy", subject="acme/checkout-service", state="info",
              marker="deploy", action="succeeded", candidate_factor=True,
              text="Deployment of 4f2c9e1 to production succeeded",
              attributes=(("environment", "production"),
                          ("ref", "4f2c9e1b7a0d5c3e8f9a1b2c3d4e5f6a7b8c9d0e"))),
        entry("2026-03-01T10:03:00", received="2026-03-01T10:03:02", position=102,
              source="uptime-kuma", kind="uptime", subject="Checkout API", state="failing",
              marker="started", severity="P1",
              text=f"Checkout API (uptime-kuma) down: HTTP 503 from {CHECKOUT_URL}",
              links=((CHECKOUT_URL, "Checkout API"),)),
        entry("2026-03-01T10:03:02", position=102, source="uptime-kuma", kind="uptime",
              subject="Checkout API", state="failing", marker="detected", severity="P1",
              text="Detected: Checkout API (uptime-kuma) notified"),
        entry("2026-03-01T10:03:30", received="2026-03-01T10:04:00", position=104,
              source="alertmanager", kind="alert", subject=CHECKOUT_ALERT, state="failing",
              severity="P1", repeats=4, last_repeat_at=t("2026-03-01T10:24:00"),
              text=f"{CHECKOUT_ALERT_NAME} (alertmanager) firing: 5xx ratio 7.2% on 10.0.4.17:9100"),
        entry("2026-03-01T10:05:00", position=106, source="pagerduty", kind="alert",
              subject="checkout", state="info", marker="acknowledged", action="acknowledged",
              text="checkout (pagerduty) page acknowledged"),
        entry("2026-03-01T10:12:00", received="2026-03-01T10:12:04", position=110,
              source="manual", kind="manual", subject="checkout", state="note", marker="note",
              text="Rolling back acme/checkout-service to 3b1d0aa"),
        entry("2026-03-01T10:14:30", received="2026-03-01T10:14:31", position=112,
              source="github", kind="deploy", subject="acme/checkout-service", state="info",
              marker="deploy", action="succeeded",
              text="Deployment of 3b1d0aa to production succeeded",
              attributes=(("environment", "production"), ("ref", "3b1d0aa"))),
        entry("2026-03-01T10:20:00", received="2026-03-01T10:20:01", position=114,
              source="uptime-kuma", kind="uptime", subject="Checkout API", state="ok",
              text="Checkout API (uptime-kuma) up: HTTP 200"),
        entry("2026-03-01T10:25:00", received="2026-03-01T10:25:30", position=116,
              source="alertmanager", kind="alert", subject=CHECKOUT_ALERT, state="ok",
              marker="resolved", text=f"{CHECKOUT_ALERT_NAME} (alertmanager) resolved"),
    )
    return Incident(
        id="inc_7f3a9c2e41d0",
        title="Checkout API down",
        service="checkout",
        severity="P1",
        status="resolved",
        started_at=started,
        detected_at=detected,
        acknowledged_at=acknowledged,
        resolved_at=resolved,
        detection_latency_seconds=_seconds(detected, started),
        duration_seconds=_seconds(resolved, started),
        detected_by="monitor",
        detection_verdict="ok",
        version=3,
        first_detector="Checkout API",
        public=True,
        subjects=("Checkout API", CHECKOUT_ALERT),
        sources=("alertmanager", "github", "pagerduty", "uptime-kuma"),
        kinds=("alert", "uptime"),
        signal_count=14,
        timeline=timeline,
    )


def checkout_action_items() -> list[ActionItem]:
    created = t("2026-03-01T11:00:00")
    return [
        ActionItem(id="ai_1", incident_id="inc_7f3a9c2e41d0",
                   title="Add a smoke test of the checkout health endpoint to the deploy "
                         "pipeline before production",
                   owner="checkout team", due_date=date(2026, 3, 10),
                   ticket_url="https://tracker.example.com/CHK-812", status="open",
                   created_at=created, position=201),
        ActionItem(id="ai_2", incident_id="inc_7f3a9c2e41d0", title="Improve monitoring",
                   owner=None, due_date=None, ticket_url=None, status="open",
                   created_at=created + timedelta(minutes=1), position=202),
        ActionItem(id="ai_3", incident_id="inc_7f3a9c2e41d0",
                   title="Document the rollback procedure for the checkout service",
                   owner="SRE on-call", due_date=date(2026, 4, 30), ticket_url=None,
                   status="open", created_at=created + timedelta(minutes=2), position=203),
        ActionItem(id="ai_4", incident_id="inc_7f3a9c2e41d0", title="Roll back 4f2c9e1",
                   owner="checkout team", due_date=date(2026, 3, 1), ticket_url=None,
                   status="done", created_at=created + timedelta(minutes=3),
                   completed_at=created + timedelta(minutes=4), position=204),
    ]


# --- A missed cron run ----------------------------------------------------------------

def missed_cron_run() -> Incident:
    """The nightly payment-reconciliation job misses its 02:00 run; Healthchecks flips
    it down after its one-hour grace period; the late run pings at 03:40:12."""
    started, detected = t("2026-03-02T02:00:00"), t("2026-03-02T03:00:05")
    resolved = t("2026-03-02T03:40:12")
    timeline = (
        entry("2026-03-02T02:00:00", received="2026-03-02T03:00:05", position=301,
              source="healthchecks", kind="cron", subject="payment-reconciliation",
              state="failing", marker="started", severity="P3",
              text="payment-reconciliation (healthchecks) missed its run: no ping since "
                   "2026-03-01T02:00:41Z",
              attributes=(("down_at", "2026-03-02T03:00:00Z"),
                          ("last_ping", "2026-03-01T02:00:41Z"),
                          ("schedule", "0 2 * * *"), ("tz", "UTC"))),
        entry("2026-03-02T03:00:05", position=301, source="healthchecks", kind="cron",
              subject="payment-reconciliation", state="failing", marker="detected",
              severity="P3", text="Detected: payment-reconciliation (healthchecks) notified"),
        entry("2026-03-02T03:40:12", received="2026-03-02T03:40:13", position=305,
              source="healthchecks", kind="cron", subject="payment-reconciliation",
              state="ok", marker="resolved",
              text="payment-reconciliation (healthchecks) up: pinged after its run"),
    )
    return Incident(
        id="inc_0c55e1a7b2f9", title="payment-reconciliation missed its run",
        service="payments", severity="P3", status="resolved",
        started_at=started, detected_at=detected, acknowledged_at=None, resolved_at=resolved,
        detection_latency_seconds=_seconds(detected, started),
        duration_seconds=_seconds(resolved, started),
        detected_by="monitor", detection_verdict="critical", version=0,
        first_detector="payment-reconciliation", public=False,
        subjects=("payment-reconciliation",), sources=("healthchecks",), kinds=("cron",),
        signal_count=2, timeline=timeline,
    )


# --- An expired certificate -----------------------------------------------------------

def expired_certificate() -> Incident:
    started, detected = t("2026-03-10T00:00:00"), t("2026-03-10T00:05:12")
    resolved = t("2026-03-10T01:10:00")
    timeline = (
        entry("2026-03-10T00:00:00", received="2026-03-10T00:05:12", position=401,
              source="uptime-kuma", kind="ssl", subject="api.example.com", state="failing",
              marker="started", severity="P2",
              text="api.example.com (uptime-kuma) certificate expired",
              attributes=(("expires_at", "2026-03-10T00:00:00Z"),)),
        entry("2026-03-10T00:05:12", position=401, source="uptime-kuma", kind="ssl",
              subject="api.example.com", state="failing", marker="detected", severity="P2",
              text="Detected: api.example.com (uptime-kuma) notified"),
        entry("2026-03-10T01:10:00", received="2026-03-10T01:10:02", position=409,
              source="uptime-kuma", kind="ssl", subject="api.example.com", state="ok",
              marker="resolved",
              text="api.example.com (uptime-kuma) certificate valid until 2026-06-08"),
    )
    return Incident(
        id="inc_9d1e0b7c33a4", title="Certificate for api.example.com expired",
        service="public-api", severity="P2", status="resolved",
        started_at=started, detected_at=detected, acknowledged_at=None, resolved_at=resolved,
        detection_latency_seconds=_seconds(detected, started),
        duration_seconds=_seconds(resolved, started),
        detected_by="monitor", detection_verdict="ok", version=0,
        first_detector="api.example.com", public=True,
        subjects=("api.example.com",), sources=("uptime-kuma",), kinds=("ssl",),
        signal_count=2, timeline=timeline,
    )


# --- An outage an engineer declared ---------------------------------------------------

def declared_outage() -> Incident:
    """Users report search returns nothing; an engineer declares at 14:20 and corrects
    the start to 13:52 from the logs; no monitor ever fired."""
    started, detected = t("2026-03-05T13:52:00"), t("2026-03-05T14:20:00")
    resolved = t("2026-03-05T15:02:00")
    timeline = (
        entry("2026-03-05T13:52:00", received="2026-03-05T14:31:00", position=503,
              source="manual", kind="manual", subject="search", state="manual",
              marker="started",
              text="Impact start corrected to this time: the search-indexer log shows "
                   "empty result sets from 13:52:00Z"),
        entry("2026-03-05T14:20:00", position=501, source="manual", kind="manual",
              subject="search", state="manual", marker="detected",
              text="Incident declared: Search returns no results"),
        entry("2026-03-05T14:26:00", received="2026-03-05T14:26:09", position=502,
              source="manual", kind="manual", subject="search", state="note", marker="note",
              text="Search index is empty after the 13:50 reindex; rebuilding it"),
        entry("2026-03-05T15:02:00", position=507, source="manual", kind="manual",
              subject="search", state="manual", marker="resolved",
              text="Incident resolved: index rebuilt"),
    )
    return Incident(
        id="inc_44b0e2d9a1c6", title="Search returns no results",
        service="search", severity="P2", status="resolved",
        started_at=started, detected_at=detected, acknowledged_at=None, resolved_at=resolved,
        detection_latency_seconds=_seconds(detected, started),
        duration_seconds=_seconds(resolved, started),
        detected_by="human", detection_verdict="critical", version=4,
        public=True, sources=("manual",), kinds=("manual",), signal_count=0,
        timeline=timeline,
    )


# --- A P1 detected after 12 minutes ---------------------------------------------------

ORDERS_LATENCY = 'OrdersLatencyHigh{cluster="prod-eu-1", route="/v1/orders"}'
ORDERS_BURN = 'OrdersErrorBudgetBurn{cluster="prod-eu-1"}'
ORDERS_LATENCY_NAME = "OrdersLatencyHigh for /v1/orders on prod-eu-1"  # as texts show them
ORDERS_BURN_NAME = "OrdersErrorBudgetBurn on prod-eu-1"


def p1_detection_gap(*, resolved: bool = True) -> Incident:
    """Latency rises at 09:00 but its alert (a long ``for`` and group_wait) notifies only
    at 09:14:30; the error-budget alert starting at 09:10:30 notifies first, at 09:12."""
    started, detected = t("2026-03-03T09:00:00"), t("2026-03-03T09:12:00")
    end = t("2026-03-03T09:40:00") if resolved else None
    timeline: tuple[TimelineEntry, ...] = (
        entry("2026-03-03T09:00:00", received="2026-03-03T09:14:30", position=601,
              source="alertmanager", kind="alert", subject=ORDERS_LATENCY, state="failing",
              marker="started", severity="P1",
              text=f"{ORDERS_LATENCY_NAME} (alertmanager) firing: p99 latency 4.8 s"),
        entry("2026-03-03T09:10:30", received="2026-03-03T09:12:00", position=602,
              source="alertmanager", kind="alert", subject=ORDERS_BURN, state="failing",
              severity="P1", repeats=14, last_repeat_at=t("2026-03-03T09:38:00"),
              text=f"{ORDERS_BURN_NAME} (alertmanager) firing: burning 14.4x budget"),
        entry("2026-03-03T09:12:00", position=602, source="alertmanager", kind="alert",
              subject=ORDERS_BURN, state="failing", marker="detected", severity="P1",
              text=f"Detected: {ORDERS_BURN_NAME} (alertmanager) notified"),
    )
    if resolved:
        timeline += (
            entry("2026-03-03T09:36:00", received="2026-03-03T09:36:30", position=611,
                  source="alertmanager", kind="alert", subject=ORDERS_BURN, state="ok",
                  text=f"{ORDERS_BURN_NAME} (alertmanager) resolved"),
            entry("2026-03-03T09:40:00", received="2026-03-03T09:40:30", position=612,
                  source="alertmanager", kind="alert", subject=ORDERS_LATENCY, state="ok",
                  marker="resolved", text=f"{ORDERS_LATENCY_NAME} (alertmanager) resolved"),
        )
    return Incident(
        id="inc_b8e27d04f615", title="Orders API slow", service="orders", severity="P1",
        status="resolved" if resolved else "open",
        started_at=started, detected_at=detected, acknowledged_at=None, resolved_at=end,
        detection_latency_seconds=_seconds(detected, started),
        duration_seconds=_seconds(end, started),
        detected_by="monitor", detection_verdict="gap", version=0,
        first_detector=ORDERS_BURN, late_detector=ORDERS_LATENCY, public=True,
        subjects=(ORDERS_LATENCY, ORDERS_BURN), sources=("alertmanager",), kinds=("alert",),
        signal_count=19, timeline=timeline,
    )


SCENARIOS = {
    "checkout_outage": checkout_outage,
    "missed_cron_run": missed_cron_run,
    "expired_certificate": expired_certificate,
    "declared_outage": declared_outage,
    "p1_detection_gap": p1_detection_gap,
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_scenario_has_its_timeline_in_time_order(name: str) -> None:
    timeline = SCENARIOS[name]().timeline
    assert list(timeline) == sorted(timeline, key=lambda e: (e.at, e.position))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_scenario_has_latency_and_duration_matching_its_moments(name: str) -> None:
    incident = SCENARIOS[name]()
    assert incident.detected_at is not None
    assert incident.detection_latency_seconds == _seconds(incident.detected_at,
                                                          incident.started_at)
    assert incident.duration_seconds == _seconds(incident.resolved_at, incident.started_at)
