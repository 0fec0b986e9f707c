"""A long transaction anywhere in the cluster holds the event store's read horizon
(ingest/store.py: readers read only below the oldest running transaction that has
written). docs/operations.md, "Metrics" and "Faults": the hold is visible as
``hindsight_read_horizon_age_seconds``, logged past ``read_horizon_warning_seconds``,
nothing committed after the horizon is projected while it holds (TIMELINE.md's
commit-safe order: nothing is skipped), and the projector catches up as soon as the
transaction ends."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from hindsight.app import create_app
from tests.faults.conftest import DedicatedPostgres
from tests.faults.harness import count, until
from tests.fixtures import load_fixture
from tests.helpers import api_headers, settings_for_tests, signed_headers

pytestmark = pytest.mark.slow

DELIVERIES = 5


async def gauge(client: Any, name: str) -> float:
    text = await (await client.get("/metrics", headers=api_headers())).text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"{name} is not exported")


async def projected(database_url: str) -> int:
    return await count(database_url, "SELECT count(*) FROM delivery_log")


async def test_a_long_transaction_holds_the_horizon_and_the_projector_catches_up_when_it_ends(
    aiohttp_client: Any, dedicated_postgres: DedicatedPostgres
) -> None:
    """On a cluster of its own: the horizon is cluster-wide, so other tests' transactions
    would move it, and this test's hold would stall them."""
    database_url = dedicated_postgres.url()
    client = await aiohttp_client(create_app(
        settings_for_tests(read_horizon_warning_seconds=2), database_url=database_url,
        projector=True))
    fixture = load_fixture("alertmanager", "firing")
    holder = await asyncpg.connect(database_url)
    await holder.execute("CREATE TABLE held_back (n int)")
    held = holder.transaction()
    await held.start()
    try:
        # A real write: the transaction gets an id, so every later commit is past it.
        await holder.execute("INSERT INTO held_back VALUES (1)")
        with capture_logs() as logs:
            for n in range(DELIVERIES):
                payload = orjson.loads(fixture.body)
                payload["groupKey"] = f"{payload.get('groupKey', '')}-{n}"
                body = orjson.dumps(payload)
                response = await client.post(
                    "/v1/webhooks/alertmanager", data=body,
                    headers=signed_headers("alertmanager", body, fixture.headers))
                assert response.status == 202  # committed: acknowledged
            # The gauge grows with the hold (refreshed every 2 s).
            assert await until(
                lambda: _at_least(client, "hindsight_read_horizon_age_seconds", 3.0), 15.0)
            first = await gauge(client, "hindsight_read_horizon_age_seconds")
            await asyncio.sleep(2.5)
            assert await gauge(client, "hindsight_read_horizon_age_seconds") > first
        assert any(e["event"] == "read_horizon_held" and e["log_level"] == "warning"
                   for e in logs)
        # Nothing past the horizon is projected: the acknowledged deliveries wait.
        assert await projected(database_url) == 0
        assert await gauge(client, "hindsight_projector_lag_events") >= DELIVERIES
    finally:
        await held.commit()
        await holder.close()
    ended = time.monotonic()

    async def caught_up() -> bool:
        return await projected(database_url) == DELIVERIES

    assert await until(caught_up, 5.0), "the projector did not catch up after the hold"
    assert time.monotonic() - ended < 2.0  # a poll interval or two, not a timeout
    assert await until(
        lambda: _at_most(client, "hindsight_read_horizon_age_seconds", 0.0), 6.0)


async def _at_least(client: Any, name: str, value: float) -> bool:
    return await gauge(client, name) >= value


async def _at_most(client: Any, name: str, value: float) -> bool:
    return await gauge(client, name) <= value
