"""The read models are a pure function of the log: a live fold of thousands of
deliveries posted concurrently in random order, a rebuild, and a second rebuild give
the same rows and the same API answers; a projector that crashes between its read-model
write and its checkpoint counts nothing twice after restart."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from hindsight.app import engine_config_from
from hindsight.database import connect
from ingest.store import EventStore
from projections.runtime.projector import PROJECTOR, Projector
from projections.runtime.rebuild import ProjectorRunning, rebuild
from tests.helpers import api_headers, run_projector_until, settings_for_tests, signed_headers
from tests.scenarios.harness import settle
from tests.scenarios.traffic import service_map, traffic

TABLES = {
    "incidents": "SELECT *, doc::text AS doc FROM incidents ORDER BY id",
    "timeline_entries": "SELECT *, doc::text AS doc FROM timeline_entries "
                        "ORDER BY incident_id, at, position, rank",
    "subject_states": "SELECT * FROM subject_states ORDER BY service, source, subject",
    "service_risks": "SELECT * FROM service_risks ORDER BY service, subject, kind, since, position",
    "signal_incidents": "SELECT * FROM signal_incidents ORDER BY position, idx",
    "delivery_log": "SELECT *, signals::text AS signals FROM delivery_log ORDER BY position",
    "projector_state": "SELECT service, state::text AS state FROM projector_state "
                       "ORDER BY service",
    "projector_checkpoint": "SELECT name, transaction_id, position, events "
                            "FROM projector_checkpoint",
}
SERVICES = service_map(60)


async def read_models(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(database_url)
    try:
        return {name: [tuple(r) for r in await conn.fetch(sql)] for name, sql in TABLES.items()}
    finally:
        await conn.close()


def without_state(models: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """The read models without ``projector_state``: the engine's saved state is when it
    was saved (a live projector every SNAPSHOT_EVERY events, a rebuild once at its end),
    not what the log says; test_rebuild_pipeline.py checks that a projector resuming from
    a rebuild's snapshot folds on as a replay of the whole log does."""
    return {name: rows for name, rows in models.items() if name != "projector_state"}


async def api_answers(client: Any) -> list[Any]:
    listing = await (await client.get("/v1/incidents", params={"limit": "1000"},
                                      headers=api_headers())).json()
    return [listing] + [
        await (await client.get(f"/v1/incidents/{i['id']}", headers=api_headers())).json()
        for i in listing["incidents"]]


async def rebuilt(database_url: str, pool: asyncpg.Pool) -> dict[str, list[tuple[Any, ...]]]:
    conn = await connect(database_url)
    try:
        await rebuild(conn, EventStore(pool), engine_config_from(settings_for_tests(
            services=SERVICES)), batch_size=2000)
    finally:
        await conn.close()
    return await read_models(database_url)


@pytest.mark.slow
async def test_a_live_fold_of_concurrent_deliveries_equals_every_rebuild(
    make_client: Any, database_url: str, pool: asyncpg.Pool
) -> None:
    """2,000 deliveries of 60 services, posted by 40 concurrent senders in random order
    while the projector runs live (batches of whatever has committed)."""
    client = await make_client(projector=True, services=SERVICES)
    start = datetime.now(UTC) - timedelta(days=6)
    deliveries = traffic(2000, seed=7, start=start, services=60)
    random.Random(7).shuffle(deliveries)
    queue = list(deliveries)

    async def sender() -> None:
        while queue:
            d = queue.pop()
            response = await client.post(f"/v1/webhooks/{d.source}", data=d.body,
                                         headers=signed_headers(d.source, d.body, d.headers))
            assert response.status in (200, 202), await response.text()

    await asyncio.gather(*(sender() for _ in range(40)))
    await settle(client, bound=120)
    live, live_answers = await read_models(database_url), await api_answers(client)
    assert len(live["incidents"]) > 50
    # Every receipt is logged, a retried copy too (ARCHITECTURE.md, idempotent appends).
    assert len(live["delivery_log"]) == len(deliveries)
    await client.close()  # the live projector lets go of its lock

    first = await rebuilt(database_url, pool)
    assert without_state(first) == without_state(live)
    assert await rebuilt(database_url, pool) == first
    reader = await make_client(projector=False, services=SERVICES)
    assert await api_answers(reader) == live_answers


async def test_a_rebuild_refuses_while_a_live_projector_leads(
    make_client: Any, database_url: str, pool: asyncpg.Pool
) -> None:
    client = await make_client(projector=True)
    projector = client.app[PROJECTOR]
    for _ in range(200):  # an empty log is "caught up" before the lock is even taken
        if projector.status.leader:
            break
        await asyncio.sleep(0.05)
    assert projector.status.leader
    conn = await connect(database_url)
    try:
        with pytest.raises(ProjectorRunning):
            await rebuild(conn, EventStore(pool), engine_config_from(settings_for_tests()))
    finally:
        await conn.close()


def crash_on(batches: set[int]) -> tuple[Callable[[str], None], list[int]]:
    """A fault hook raising on the given (1-based) batches, after the read models were
    written and before the checkpoint moved."""
    calls: list[int] = []

    def fault(where: str) -> None:
        assert where == "after-read-models"
        calls.append(len(calls) + 1)
        if calls[-1] in batches:
            raise RuntimeError(f"injected crash in batch {calls[-1]}")

    return fault, calls


async def test_a_projector_crashing_before_its_checkpoint_counts_nothing_twice(
    make_client: Any, database_url: str, pool: asyncpg.Pool
) -> None:
    """Batches of 25; crashes in the 2nd, 3rd and 6th. The projector rolls back, steps
    down, leads again from its checkpoint and saved state, and ends where a clean rebuild
    ends: same rows, same repeat counts, same event count in the checkpoint."""
    client = await make_client(projector=False, services=SERVICES)
    deliveries = traffic(300, seed=11, start=datetime.now(UTC) - timedelta(days=2), services=60)
    await import_deliveries_unprojected(client, deliveries)
    async with pool.acquire() as c:
        total = await c.fetchval("SELECT count(*) FROM events")

    fault, calls = crash_on({2, 3, 6})
    projector = Projector(EventStore(pool), database_url,
                          engine_config_from(settings_for_tests(services=SERVICES)),
                          connect=lambda: connect(database_url), batch_size=25,
                          poll_interval=0.05, fault=fault)
    await run_projector_until(projector, total, 60)
    crashed = await read_models(database_url)
    assert len(calls) > total // 25 + 2  # three batches were written twice
    assert crashed["projector_checkpoint"][0][3] == total

    assert without_state(await rebuilt(database_url, pool)) == without_state(crashed)


async def import_deliveries_unprojected(client: Any, deliveries: list[Any]) -> None:
    body = b"\n".join(d.line() for d in deliveries) + b"\n"
    response = await client.post("/v1/deliveries/import", data=body, headers=api_headers())
    results = (await response.json())["results"]
    assert {r["status"] for r in results} <= {200, 202}



