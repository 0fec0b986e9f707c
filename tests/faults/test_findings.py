"""Bugs the fault tests ran into in code outside tests/faults, each pinned by a test that
fails until it is fixed (strict xfail: the fixer removes the marker)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from ingest.delivery import Delivery
from ingest.sources import understand
from projections.engine import Engine, EngineConfig
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


@pytest.mark.xfail(strict=True, reason=(
    "projections/engine.py: an incident resolved more than `retention` (30 days) before the "
    "service's latest receipt time is evicted in the same batch, and take_changes skips it "
    "('dropped by retention meanwhile'), so its resolution and last signals never reach the "
    "read models: they keep whatever the previous batch wrote (open, N signals), which "
    "depends on batch boundaries, i.e. on timing. Live deliveries whose data time is a "
    "month old (a clock-skewed or replaying tool) end as open incidents forever."))
def test_an_incident_resolved_beyond_retention_is_still_written_resolved_whatever_the_batching(
) -> None:
    months_later = DATA_START + timedelta(days=60)  # past the 30-day retention
    every = written_incidents(months_later, 1)
    assert every == written_incidents(months_later, 7)
    assert {status for status, _ in every.values()} == {"resolved"}


# Found by schemathesis (tests/api/test_openapi.py): projections/routes.py turns a query
# or path value it cannot use into a 500 instead of a 400/404.
@pytest.mark.xfail(strict=True, reason=(
    "projections/routes.py: int(request.query['limit']) raises ValueError on a non-number "
    "and a negative limit reaches PostgreSQL (LIMIT must not be negative): 500, not 400"))
@pytest.mark.parametrize("path", ["/v1/incidents?limit=null", "/v1/incidents?limit=-1",
                                  "/v1/deliveries?limit=null", "/v1/deliveries?limit=-1"])
async def test_a_malformed_limit_is_a_400(client: Any, path: str) -> None:
    response = await client.get(path, headers=api_headers())
    assert response.status == 400


@pytest.mark.xfail(strict=True, reason=(
    "projections/routes.py get_delivery: an id past int64 reaches asyncpg "
    "(DataError: value out of int64 range): 500, not 404"))
async def test_a_delivery_id_past_the_largest_position_is_a_404(client: Any) -> None:
    response = await client.get("/v1/deliveries/9223372036854775808", headers=api_headers())
    assert response.status == 404
