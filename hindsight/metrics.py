"""Prometheus metrics, one registry per application (no module-level singletons).

Under ``serve`` (several processes, ``PROMETHEUS_MULTIPROC_DIR`` set by the supervisor)
every process writes its samples to shared files and ``/metrics`` reads them all:
counters and histograms are summed over the processes (dead ones included, so a
restart loses no count); each gauge says below how processes' values combine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.deliveries = Counter(
            "hindsight_deliveries_total",
            "Webhook deliveries answered, by source and outcome "
            "(understood, duplicate, invalid, unmapped, unsupported, unauthenticated, "
            "too_large, unknown_source, unavailable).",
            ["source", "outcome"], registry=r)
        self.request_seconds = Histogram(
            "hindsight_request_seconds", "HTTP request latency by route and status class.",
            ["route", "status"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.append_seconds = Histogram(
            "hindsight_append_seconds", "Time from a delivery entering group commit to its commit.",
            registry=r, buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2))
        self.batch_size = Histogram(
            "hindsight_group_commit_batch_size",
            "Deliveries committed together in one transaction.",
            registry=r, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.projector_lag_events = Gauge(
            "hindsight_projector_lag_events",
            "Events in the log after the projector's checkpoint (counted up to 1,000,000); "
            "every replica reports it from the shared checkpoint.",
            registry=r, multiprocess_mode="livemostrecent")
        self.projector_lag_seconds = Gauge(
            "hindsight_projector_lag_seconds",
            "Age in seconds of the oldest event not yet projected; 0 when caught up.",
            registry=r, multiprocess_mode="livemostrecent")
        self.read_horizon_age_seconds = Gauge(
            "hindsight_read_horizon_age_seconds",
            "How long the oldest running transaction that has written (anywhere in the "
            "cluster) has held back the event store's readers; 0 when none runs.",
            registry=r, multiprocess_mode="livemax")
        self.projector_leader = Gauge(
            "hindsight_projector_leader",
            "1 when this serve (its projector process) holds the projector lock.",
            registry=r, multiprocess_mode="livemax")
        self.open_incidents = Gauge(
            "hindsight_open_incidents", "Incidents currently open (as last projected).", registry=r,
            multiprocess_mode="livemostrecent")
        self._request_children: dict[tuple[str, int], Any] = {}

    def request_seconds_of(self, route: str, status: int) -> Any:
        """``request_seconds`` for a route and status class, each child looked up once."""
        child = self._request_children.get((route, status))
        if child is None:
            child = self.request_seconds.labels(route, f"{status // 100}xx")
            self._request_children[(route, status)] = child
        return child
