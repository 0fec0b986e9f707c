"""Adapter output folded by the real engine: what a fixture means for the timeline.

Adapter tests pin the signals; these helpers let a test also state the TIMELINE.md rule
those signals exist for (an acknowledgement's moment, a warning that opens nothing, a
risk that a later success clears), through ``projections.engine.fold.Engine`` as the
projector runs it.
"""

from __future__ import annotations

from ingest.delivery import Delivery
from ingest.sources import parse
from projections.engine.fold import Engine, EngineConfig
from tests.fixtures import load_fixture


def fold(*deliveries: Delivery | tuple[str, str], config: EngineConfig | None = None) -> Engine:
    """An engine fed the deliveries in order (log positions 1, 2, …), each at its
    ``received_at``; a ``(source, name)`` pair is that fixture."""
    engine = Engine(config or EngineConfig())
    for position, item in enumerate(deliveries, start=1):
        delivery = load_fixture(*item).delivery() if isinstance(item, tuple) else item
        engine.apply_delivery(position, delivery.received_at, parse(delivery))
    return engine
