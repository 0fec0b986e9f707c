"""Backup and restore of the event log with pg_dump/pg_restore into another cluster, as
docs/operations.md tells an operator to do it."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from hindsight.app import create_app
from hindsight.database import create_pool
from hindsight.migrations import migrate
from ingest.store import Cursor, EventStore, NewEvent
from projections.runtime.projection import engine_config
from projections.runtime.projector import RestoredFromAnotherCluster
from projections.runtime.rebuild import rebuild
from tests.faults.conftest import DedicatedPostgres
from tests.faults.harness import count, until
from tests.helpers import settings_for_tests

pytestmark = pytest.mark.slow

RENUMBER = """
BEGIN;
ALTER TABLE events DISABLE TRIGGER events_no_update_delete;
UPDATE events SET transaction_id = pg_current_xact_id();
ALTER TABLE events ENABLE ALWAYS TRIGGER events_no_update_delete;
COMMIT;
"""


def event(n: int) -> NewEvent:
    return NewEvent(stream=f"delivery-test-{n}", type="delivery.received",
                    received_at=datetime.now(UTC), data={"source": "alertmanager"},
                    body=b'{"n": %d}' % n, idempotency_key=f"restore-{n}")


async def run(*command: str) -> None:
    await asyncio.to_thread(subprocess.run, command, check=True, capture_output=True,
                            timeout=120)


async def read_all(url: str) -> list[int]:
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        return [e.position for e in await EventStore(pool).read(Cursor(), limit=10_000)]
    finally:
        await pool.close()


async def append(url: str, events: list[NewEvent]) -> None:
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        await EventStore(pool).append_independent(events)
    finally:
        await pool.close()


async def test_a_logical_restore_into_a_new_cluster_is_readable_after_renumbering(
    database_url: str, dedicated_postgres: DedicatedPostgres
) -> None:
    """The restored log reads in order, and later appends read after it. Without the
    renumbering, the old cluster's transaction ids hide the restored events from readers
    (the hazard docs/operations.md warns about)."""
    pg = dedicated_postgres
    await append(database_url, [event(n) for n in range(1, 21)])
    restored_url = await restore_into_a_fresh_cluster(database_url, pg)

    assert await read_all(restored_url) == []  # the hazard: ids from "the future"

    conn = await asyncpg.connect(restored_url)
    try:
        await conn.execute(RENUMBER)
    finally:
        await conn.close()
    assert await read_all(restored_url) == list(range(1, 21))
    await append(restored_url, [event(21)])
    assert await read_all(restored_url) == list(range(1, 22))


async def restore_into_a_fresh_cluster(database_url: str, pg: DedicatedPostgres) -> str:
    """pg_dump the whole database and pg_restore it into a new database of ``pg`` (a
    fresh cluster, whose transaction counter is behind the source's), as
    docs/operations.md's restore section says; the restored database's URL."""
    source = await asyncpg.connect(database_url)
    try:
        highest = int(await source.fetchval("SELECT max(transaction_id)::text::bigint FROM events"))
    finally:
        await source.close()
    target = await asyncpg.connect(pg.url())
    try:
        await target.execute("CREATE DATABASE restored")
        fresh = int(await target.fetchval("SELECT pg_current_xact_id()::text::bigint"))
    finally:
        await target.close()
    if highest <= fresh:
        pytest.skip("the source cluster's transaction ids are not ahead of a fresh cluster's")
    dump = pg.root / "hindsight.dump"
    await run(str(pg.bin / "pg_dump"), "--format=custom", f"--file={dump}", database_url)
    restored_url = pg.url("restored")
    conn = await asyncpg.connect(restored_url)
    try:
        await migrate(conn)  # creates hindsight_service in the new cluster
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()
    # The dump carries the privileges (0005's column grants included); the recreated
    # schema's USAGE is granted again.
    await run(str(pg.bin / "pg_restore"), "--no-owner", f"--dbname={restored_url}", str(dump))
    conn = await asyncpg.connect(restored_url)
    try:
        await conn.execute("GRANT USAGE ON SCHEMA public TO hindsight_service")
    finally:
        await conn.close()
    return restored_url


async def test_serve_refuses_a_log_restored_from_another_cluster_naming_the_fix(
    aiohttp_client: Any, database_url: str, dedicated_postgres: DedicatedPostgres
) -> None:
    """Issue 12, item 3: a plain pg_restore into a fresh cluster leaves transaction ids
    ahead of the cluster's, which readers never reach (a silently empty dashboard, new
    deliveries ordered before the history). The start refuses, naming the renumbering
    and the rebuild (docs/operations.md, "Backup and restore")."""
    await append(database_url, [event(n) for n in range(1, 21)])
    restored_url = await restore_into_a_fresh_cluster(database_url, dedicated_postgres)
    app = create_app(settings_for_tests(), database_url=restored_url, projector=True)
    with pytest.raises(RestoredFromAnotherCluster) as refused:
        await aiohttp_client(app)
    message = str(refused.value)
    assert "UPDATE events SET transaction_id = pg_current_xact_id()" in message
    assert "hindsight rebuild" in message
    # Nothing was ingested meanwhile: the restored history keeps its place.
    assert await count(restored_url, "SELECT count(*) FROM events") == 20


async def test_a_checkpoint_restored_from_another_cluster_is_replayed_not_left_ahead(
    aiohttp_client: Any, database_url: str, dedicated_postgres: DedicatedPostgres
) -> None:
    """The read models and checkpoint restored with the log, the log renumbered but no
    rebuild run: every event now sorts below the checkpoint's old transaction id and
    would never be projected. The projector replays from the start instead (the read
    side is a pure function of the log), and later deliveries are projected too."""
    await append(database_url, [event(n) for n in range(1, 21)])
    source = await aiohttp_client(create_app(settings_for_tests(), database_url=database_url,
                                             projector=True))
    projected = "SELECT coalesce(max(events), 0) FROM projector_checkpoint"
    assert await until(lambda: _reaches(database_url, projected, 20), 15.0)
    await source.close()
    restored_url = await restore_into_a_fresh_cluster(database_url, dedicated_postgres)
    conn = await asyncpg.connect(restored_url)
    try:
        await conn.execute(RENUMBER)
        checkpoint = int(await conn.fetchval(
            "SELECT transaction_id FROM projector_checkpoint WHERE name = 'main'"))
        following = int(await conn.fetchval(
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint"))
    finally:
        await conn.close()
    assert checkpoint >= following  # the hazard this test is about
    await aiohttp_client(create_app(settings_for_tests(), database_url=restored_url,
                                    projector=True))
    replayed = ("SELECT count(*) FROM projector_checkpoint WHERE events >= 20 "
                f"AND transaction_id < {following}")
    assert await until(lambda: _reaches(restored_url, replayed, 1), 15.0)
    logged = "SELECT count(*) FROM delivery_log"
    assert await count(restored_url, logged) == 20  # replayed, not doubled
    await append(restored_url, [event(21)])
    assert await until(lambda: _reaches(restored_url, logged, 21), 15.0)


async def _reaches(url: str, query: str, value: int) -> bool:
    return await count(url, query) >= value


async def test_rebuild_refuses_a_log_restored_from_another_cluster(
    database_url: str, dedicated_postgres: DedicatedPostgres
) -> None:
    """The rebuild refuses what ``serve`` refuses (docs/operations.md, "Backup and
    restore"): it would read none of the restored events and leave empty read models.
    The refusal names the renumbering."""
    await append(database_url, [event(n) for n in range(1, 21)])
    restored_url = await restore_into_a_fresh_cluster(database_url, dedicated_postgres)
    conn = await asyncpg.connect(restored_url)
    pool = await create_pool(restored_url, min_size=1, max_size=2)
    try:
        with pytest.raises(RestoredFromAnotherCluster) as refused:
            await rebuild(conn, EventStore(pool), engine_config())
        assert "UPDATE events SET transaction_id = pg_current_xact_id()" in str(refused.value)
    finally:
        await pool.close()
        await conn.close()
