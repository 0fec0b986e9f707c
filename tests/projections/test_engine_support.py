"""Builders for the engine tests: signals at exact times, and a log that numbers them.

Signals are built directly (``ingest.signals.Signal``), never through an adapter: these
tests pin the engine's rules, whatever payload shapes the adapters map.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.manual import ManualEvent
from ingest.signals import Signal
from projections.engine.fold import Engine, EngineConfig
from projections.engine.model import Incident, TimelineEntry

T0 = datetime(2025, 3, 14, 10, 0, 0, tzinfo=UTC)


def t(minutes: float = 0, seconds: float = 0) -> datetime:
    """T0 (2025-03-14 10:00:00Z) plus an offset."""
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def sig(
    subject: str = "Checkout API",
    state: str = "failing",
    *,
    at: datetime = T0,
    notified: datetime | None = None,
    source: str = "uptime-kuma",
    kind: str = "uptime",
    service: str | None = "checkout",
    severity: str | None = None,
    summary: str = "",
    started: datetime | None = None,
    action: str | None = None,
    attributes: Sequence[tuple[str, str]] = (),
) -> Signal:
    return Signal(
        source=source,
        kind=kind,  # type: ignore[arg-type]
        subject=subject,
        state=state,  # type: ignore[arg-type]
        occurred_at=at,
        notified_at=notified or at,
        service=service,
        severity=severity,  # type: ignore[arg-type]
        summary=summary,
        started_at=started,
        action=action,
        attributes=tuple(attributes),
    )


def deploy(
    at: datetime,
    action: str = "succeeded",
    *,
    ref: str = "4f2c9e1",
    subject: str = "acme/checkout-service production",
    service: str = "checkout",
) -> Signal:
    return sig(subject, "failing" if action in ("failed", "pipeline_failed") else "info",
               at=at, source="github", kind="deploy", service=service, action=action,
               attributes=(("ref", ref), ("environment", "production")))


class Log:
    """An engine fed one event at a time, with log positions 1, 2, 3, … ."""

    def __init__(self, config: EngineConfig | None = None, **options: Any) -> None:
        self.engine = Engine(config or EngineConfig(**options))
        self.position = 0
        self.events: list[tuple[Any, ...]] = []

    def deliver(self, *signals: Signal, received: datetime | None = None) -> int:
        """One delivery; received when its first signal says it notified."""
        self.position += 1
        when = received or signals[0].notified_at
        self.events.append(("delivery", self.position, when, signals))
        self.engine.apply_delivery(self.position, when, signals)
        return self.position

    def manual(self, incident_id: str | None, event: ManualEvent, recorded: datetime) -> int:
        self.position += 1
        self.events.append(("manual", self.position, recorded, event, incident_id))
        self.engine.apply_manual(self.position, recorded, event, incident_id=incident_id)
        return self.position

    def incidents(self, service: str | None = None) -> list[Incident]:
        found = self.engine.incidents()
        return [i for i in found if service is None or i.service == service]

    def only(self) -> Incident:
        (incident,) = self.engine.incidents()
        return incident


def marked(incident: Incident, marker: str) -> list[TimelineEntry]:
    return [e for e in incident.timeline if e.marker == marker]


def texts(incident: Incident) -> list[str]:
    return [e.text for e in incident.timeline]
