"""Backup and restore of the event log with pg_dump/pg_restore into another cluster, as
docs/operations.md tells an operator to do it."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime

import asyncpg
import pytest

from hindsight.database import create_pool
from hindsight.migrations import migrate
from ingest.store import Cursor, EventStore, NewEvent
from tests.faults.conftest import DedicatedPostgres

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
        await migrate(conn)  # creates hindsight_service in the new cluster, as step 1 says
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()
    await run(str(pg.bin / "pg_restore"), "--no-owner", f"--dbname={restored_url}", str(dump))
    conn = await asyncpg.connect(restored_url)
    try:
        await conn.execute("GRANT USAGE ON SCHEMA public TO hindsight_service; "
                           "GRANT SELECT, INSERT ON events TO hindsight_service; "
                           "GRANT SELECT ON schema_migrations TO hindsight_service")
    finally:
        await conn.close()

    assert await read_all(restored_url) == []  # the hazard: ids from "the future"

    conn = await asyncpg.connect(restored_url)
    try:
        await conn.execute(RENUMBER)
    finally:
        await conn.close()
    assert await read_all(restored_url) == list(range(1, 21))
    await append(restored_url, [event(21)])
    assert await read_all(restored_url) == list(range(1, 22))
