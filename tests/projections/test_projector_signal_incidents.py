"""The ``signal_incidents`` read model through the real server and projector: each
signal's row names its current incident after a split or a merge moved it, and the
live projection (one batch per import) writes the rows a rebuild writes (TIMELINE.md
rule 11: the read models are a pure function of the log)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from hindsight.app import engine_config_from
from hindsight.database import connect
from ingest.store import EventStore
from projections.runtime.rebuild import rebuild
from tests.helpers import api_headers, settings_for_tests
from tests.scenarios.harness import import_deliveries, incidents, settle
from tests.scenarios.payloads import kuma

BASE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=2)


def s(offset: float) -> datetime:
    return BASE + timedelta(seconds=offset)


async def rows(database_url: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(database_url)
    try:
        return [tuple(r) for r in await conn.fetch(
            "SELECT position, idx, incident_id FROM signal_incidents ORDER BY position, idx")]
    finally:
        await conn.close()


async def test_signal_rows_follow_splits_and_merges_and_equal_a_rebuild(
    make_client: Any, database_url: str, pool: asyncpg.Pool
) -> None:
    client = await make_client(projector=True)
    # Uptime Kuma state changes imported out of order, one batch each: the next day's
    # failure first; then 10:00's failure, which joins it while its end is unknown; then
    # its recovery, which splits it off into its own incident.
    for delivery in (kuma(False, s(86400), s(86400.5)), kuma(False, s(0), s(0.5)),
                     kuma(True, s(180), s(180.5))):
        await import_deliveries(client, [delivery])
    found = sorted(await incidents(client), key=lambda i: i["started_at"])
    assert len(found) == 2
    older, newer = found
    live = await rows(database_url)
    by_position = sorted(live)
    assert [r[2] for r in by_position] == [newer["id"], older["id"], older["id"]]

    response = await client.post(f"/v1/incidents/{newer['id']}/events",
                                 headers=api_headers(),
                                 json={"type": "merge", "other_id": older["id"]})
    assert response.status == 201, await response.text()
    await settle(client)
    live = await rows(database_url)
    assert {r[2] for r in live} == {older["id"]}  # the survivor holds every signal now
    await client.close()  # the live projector lets go of its lock

    conn = await connect(database_url)
    try:
        await rebuild(conn, EventStore(pool), engine_config_from(settings_for_tests()))
    finally:
        await conn.close()
    assert await rows(database_url) == live
