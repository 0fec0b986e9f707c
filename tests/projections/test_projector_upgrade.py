"""A projector whose saved engine state is of another format replays the log."""

from __future__ import annotations

from typing import Any

import asyncpg

from hindsight.app import engine_config_from
from hindsight.database import connect
from ingest.store import EventStore
from projections.runtime.projector import Projector
from tests.fixtures import load_fixture
from tests.helpers import run_projector_until, settings_for_tests, signed_headers


async def project_everything(database_url: str, pool: asyncpg.Pool, total: int) -> Projector:
    projector = Projector(EventStore(pool), database_url,
                          engine_config_from(settings_for_tests()),
                          connect=lambda: connect(database_url), poll_interval=0.05)
    await run_projector_until(projector, total)
    return projector


async def test_a_saved_state_of_another_format_makes_the_projector_replay_from_the_start(
    make_client: Any, database_url: str, pool: asyncpg.Pool
) -> None:
    client = await make_client(projector=False)
    fixture = load_fixture("alertmanager", "firing")
    response = await client.post("/v1/webhooks/alertmanager", data=fixture.body,
                                 headers=signed_headers("alertmanager", fixture.body,
                                                        fixture.headers))
    assert response.status == 202
    await project_everything(database_url, pool, 1)

    owner = await asyncpg.connect(database_url)
    try:
        before = await owner.fetch("SELECT id, doc::text FROM incidents ORDER BY id")
        # Save the state now (as every 20,000 events) and make it a format from the past.
        await owner.execute("INSERT INTO projector_state (service, state) "
                            "VALUES ('checkout', '{\"format\": 1}') "
                            "ON CONFLICT (service) DO UPDATE SET state = excluded.state")
        await owner.execute("UPDATE projector_checkpoint SET snapshot_transaction_id = "
                            "transaction_id, snapshot_position = position")
        projector = await project_everything(database_url, pool, 1)
        after = await owner.fetch("SELECT id, doc::text FROM incidents ORDER BY id")
        events = await owner.fetchval("SELECT events FROM projector_checkpoint")
    finally:
        await owner.close()
    assert projector.status.events == 1
    assert events == 1
    assert [tuple(r) for r in after] == [tuple(r) for r in before]
