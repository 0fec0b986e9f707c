"""The harness's own arrangement of deliveries: ``shuffled`` (used by the scenarios and
the simulation) must keep every delivery and keep a tool's causal order."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.scenarios.harness import shuffled
from tests.scenarios.payloads import Recorded, at


def _attempt(name: str, offset: float) -> Recorded:
    when = at("2025-03-14T10:00:00Z") + timedelta(seconds=offset)
    return Recorded("native", when, {}, name.encode(), key=name)


@pytest.mark.parametrize("seed", range(40))
def test_every_delivery_is_placed_and_every_retry_follows_what_it_repeats(seed: int) -> None:
    """ARCHITECTURE.md "Idempotent appends": a tool only retries a request it sent, so a
    retry (and a retry of that retry: Alertmanager, GitHub and Standard Webhooks senders
    retry until answered) never arrives before the attempt it repeats; and no delivery
    is lost by the arrangement, or an import would test less than the world holds."""
    deliveries: list[Recorded] = []
    for n in range(6):
        attempt = _attempt(f"d{n}", n)
        chain = [attempt]
        for depth in range(n % 4):
            chain.append(chain[-1].retried(attempt.received_at + timedelta(seconds=depth + 1)))
        deliveries += chain
    order = shuffled(deliveries, seed)
    assert sorted(d.key for d in order) == sorted(d.key for d in deliveries)
    position = {d.key: i for i, d in enumerate(order)}
    for d in deliveries:
        if d.retry_of is not None:
            assert position[d.retry_of] < position[d.key]


def test_the_order_depends_on_the_seed_only() -> None:
    deliveries = [_attempt(f"d{n}", n) for n in range(20)]
    assert shuffled(deliveries, 3) == shuffled(list(deliveries), 3)
    assert shuffled(deliveries, 3) != shuffled(deliveries, 4)


def test_a_retry_whose_attempt_is_missing_is_named() -> None:
    lone = _attempt("d0", 0).retried(at("2025-03-14T10:00:05Z"))
    with pytest.raises(ValueError, match="d0"):
        shuffled([lone], 1)
