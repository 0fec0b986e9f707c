"""Bugs the fault tests and schemathesis ran into in code outside tests/faults, pinned
by regression tests (each was a strict xfail until fixed)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from ingest.delivery import Delivery
from ingest.sources import understand
from projections.engine.fold import Engine, EngineConfig
from tests.faults.harness import DATA_START, PER_EPISODE, alert_delivery
from tests.helpers import api_headers


def written_incidents(received_from: datetime, flush_every: int) -> dict[str, Any]:
    """Fold three episodes of one service, taking the changes (what the projector
    writes to the read models) every ``flush_every`` deliveries; the last written view
    of each incident, as the read model would hold it."""
    engine = Engine(EngineConfig())
    written: dict[str, Any] = {}
    position = 0
    for episode in range(3):
        for seq in range(PER_EPISODE):
            position += 1
            received_at = received_from + timedelta(milliseconds=10 * position)
            delivery = Delivery(source="alertmanager", body=alert_delivery(3, episode, seq),
                                received_at=received_at, headers={})
            engine.apply_delivery(position, received_at, understand(delivery).signals)
            if position % flush_every == 0:
                for incident in engine.take_changes().incidents:
                    written[incident.id] = (incident.status, incident.signal_count)
    for incident in engine.take_changes().incidents:
        written[incident.id] = (incident.status, incident.signal_count)
    return written


def test_read_models_do_not_depend_on_batching_when_data_time_is_recent() -> None:
    recent = DATA_START + timedelta(hours=1)  # receipt just after the alerts' times
    assert written_incidents(recent, 1) == written_incidents(recent, 7)


def test_an_incident_resolved_beyond_retention_is_still_written_resolved_whatever_the_batching(
) -> None:
    months_later = DATA_START + timedelta(days=60)  # past the 30-day retention
    every = written_incidents(months_later, 1)
    assert every == written_incidents(months_later, 7)
    assert {status for status, _ in every.values()} == {"resolved"}


# Found by schemathesis (tests/api/test_openapi.py): projections/web/routes.py turned a query
# or path value it could not use into a 500 instead of a 400/404.
@pytest.mark.parametrize(("path", "status"), [
    ("/v1/incidents?limit=null", 400), ("/v1/deliveries?limit=null", 400),
    ("/v1/incidents?limit=-1", 200), ("/v1/deliveries?limit=-1", 200),  # clamped to 1
])
async def test_a_malformed_limit_is_a_400_and_an_out_of_range_one_is_clamped(
    client: Any, path: str, status: int
) -> None:
    response = await client.get(path, headers=api_headers())
    assert response.status == status


async def test_a_delivery_id_past_the_largest_position_is_a_404(client: Any) -> None:
    response = await client.get("/v1/deliveries/9223372036854775808", headers=api_headers())
    assert response.status == 404
