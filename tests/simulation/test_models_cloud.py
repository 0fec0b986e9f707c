"""The Vercel, Azure Monitor and Google Cloud Monitoring models keep their own promises,
and the real ingest path accepts everything they send (authenticated with the tool's own
credential, understood by its adapter), so a model that sends what Hindsight cannot read
fails here rather than as an incident mismatch."""

from __future__ import annotations

import random
from functools import cache

import pytest

from ingest.auth import Credentials, Request, authenticate
from ingest.delivery import Delivery, keep_headers
from ingest.signals import Signal
from ingest.sources import understand
from ingest.webhooks import parse_import_line
from tests.helpers import SECRETS, TOKENS
from tests.scenarios.payloads import Recorded
from tests.simulation.tools import azure_monitor, google_cloud_monitoring, vercel
from tests.simulation.world import EPOCH, Model, Observation, ServicePlan, plan_outages

MODELS: dict[str, Model] = {**vercel.MODELS, **azure_monitor.MODELS,
                            **google_cloud_monitoring.MODELS}
SEEDS = range(15)


@cache
def worlds(name: str) -> tuple[tuple[ServicePlan, Observation], ...]:
    return tuple((plan, MODELS[name](plan, random.Random(f"{name}:{seed}")))
                 for seed in SEEDS
                 for plan in [plan_outages(random.Random(seed), f"s{seed}-shop", EPOCH, days=4)])


def read(recorded: Recorded) -> tuple[str, list[Signal]]:
    source, received_at, headers, query, body = parse_import_line(recorded.line())
    lower = {k.lower(): v for k, v in headers.items()}
    creds = Credentials(token=TOKENS.get(source), secrets=(SECRETS.get(source, ""),))
    problem = authenticate(source, Request(body, lower, query, received_at), creds, 300)
    assert problem is None, problem
    understood = understand(Delivery(source, body, received_at, keep_headers(lower)))
    return understood.outcome, list(understood.signals)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_delivery_is_authentic_and_understood(name: str) -> None:
    sent = [d for _, seen in worlds(name) for d in seen.deliveries]
    assert sent
    for delivery in sent:
        outcome, _ = read(delivery)
        assert outcome == "understood", delivery.body[:200]


def test_vercel_sends_deploys_only_and_every_failure_is_followed_by_a_success() -> None:
    """TIMELINE.md rule 7: a failed deploy stays a risk until a later success."""
    for _, seen in worlds("vercel"):
        assert seen.reports == []
        signals = sorted((s for d in seen.deliveries for s in read(d)[1]),
                         key=lambda s: s.occurred_at)
        assert all(s.kind == "deploy" for s in signals)
        last: dict[str, str | None] = {}
        for signal in signals:
            last[signal.subject] = signal.action
        assert "failed" not in last.values()


@pytest.mark.parametrize("name", ["azure-monitor", "google-cloud-monitoring"])
def test_each_report_is_what_the_payloads_state(name: str) -> None:
    """A report's start is its failing signal's occurred_at, its detection the first
    receipt of that delivery, its resolution the recovery's occurred_at."""
    reported = 0
    for _, seen in worlds(name):
        for report in seen.reports:
            reported += 1
            read_back = [(d, s) for d in seen.deliveries for s in read(d)[1]]
            failing = [(d, s) for d, s in read_back if s.state == "failing"
                       and s.occurred_at == report.started]
            assert failing
            assert min(d.received_at for d, _ in failing) == report.detected
            assert any(s.state == "ok" and s.occurred_at == report.resolved
                       for _, s in read_back)
    assert reported
