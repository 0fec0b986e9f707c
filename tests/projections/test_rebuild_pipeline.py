"""The streaming rebuild (issue 11, item 4): folding overlaps writing, read models are
written set-wise, one engine snapshot at the end, the fold sharded by service.

The contract is ARCHITECTURE.md's and docs/architecture.md's: the read side is a pure
function of the log, so a rebuild in one process, a rebuild in two shards and the live
projector give the same rows, ids included; and every batch commits its rows with its
checkpoint or nothing (docs/architecture.md, "Sharded rebuild", for the shards' rule).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from hindsight.app import engine_config_from
from hindsight.database import connect
from ingest.store import EventStore
from projections.runtime import rebuild as rb
from projections.runtime.projection import Pending, Projection, stored_firsts, write
from projections.runtime.projector import reset_read_models
from projections.runtime.timeline_rows import WrittenTimelines
from tests.helpers import api_headers, settings_for_tests
from tests.projections.test_projector_determinism import (
    SERVICES,
    import_deliveries_unprojected,
)
from tests.projections.test_projector_determinism import TABLES as FOLDED
from tests.scenarios.harness import settle
from tests.scenarios.traffic import traffic
from tests.simulation.served import import_all, in_time_order, services_of
from tests.simulation.worlds import draw, models

Models = dict[str, list[tuple[Any, ...]]]
TABLES = {**FOLDED,
          "action_items": "SELECT *, doc::text AS doc FROM action_items ORDER BY id",
          "projector_checkpoint": "SELECT name, transaction_id, position, events, "
                                  "snapshot_transaction_id, snapshot_position "
                                  "FROM projector_checkpoint"}


def without_state(models: Models) -> Models:
    """Without the engine's saved state and the snapshot cursor: saved when the live
    projector's schedule or a rebuild's end says, not what the log says."""
    out = {name: rows for name, rows in models.items() if name != "projector_state"}
    out["projector_checkpoint"] = [row[:4] for row in models["projector_checkpoint"]]
    return out


async def read_models(database_url: str) -> Models:
    conn = await asyncpg.connect(database_url)
    try:
        return {name: [tuple(r) for r in await conn.fetch(sql)] for name, sql in TABLES.items()}
    finally:
        await conn.close()


async def rebuilt(database_url: str, pool: asyncpg.Pool, services: dict[str, list[str]],
                  shards: int = 1, **kwargs: Any) -> Models:
    conn = await connect(database_url)
    try:
        await rb.rebuild(conn, EventStore(pool), engine_config_from(settings_for_tests(
            services=services)), batch_size=kwargs.pop("batch_size", 300), shards=shards,
            dsn=database_url, **kwargs)
    finally:
        await conn.close()
    return await read_models(database_url)


async def checkpoint(pool: asyncpg.Pool) -> asyncpg.Record:
    async with pool.acquire() as conn:
        return await conn.fetchrow(
            "SELECT transaction_id, position, events, snapshot_transaction_id, "
            "snapshot_position FROM projector_checkpoint")


async def manual_events(client: Any) -> None:
    """Engineers' events on the first incidents: a declaration, notes, an
    acknowledgement, a severity and an action item (no merge: see the merge test)."""
    listing = await (await client.get("/v1/incidents", params={"limit": "6"},
                                      headers=api_headers())).json()
    ids = [i["id"] for i in listing["incidents"]]
    assert len(ids) >= 3
    at = datetime.now(UTC).isoformat()
    answer = await client.post("/v1/incidents", headers=api_headers(), json={
        "service": "svc007", "title": "Failed logins", "started_at": at})
    assert answer.status == 201, await answer.text()
    for inc_id in ids[:3]:
        for body in ({"type": "note", "at": at, "text": "looking"},
                     {"type": "severity", "severity": "P1"}):
            response = await client.post(f"/v1/incidents/{inc_id}/events", json=body,
                                         headers=api_headers())
            assert response.status == 201, await response.text()
    response = await client.post(f"/v1/incidents/{ids[0]}/action-items",
                                 json={"title": "Add a canary"}, headers=api_headers())
    assert response.status == 201, await response.text()


@pytest.mark.slow
async def test_two_shards_give_the_rows_of_one_process_and_of_the_live_fold(
    make_client: Any, database_url: str, pool: asyncpg.Pool
) -> None:
    """Traffic of 60 services folded live (with engineers' events), then rebuilt in one
    process and in two shards: the same rows, byte for byte, ids and saved engine state
    included (the live projector saves its state on its own schedule: compared without)."""
    client = await make_client(projector=True, services=SERVICES)
    deliveries = traffic(1500, seed=5, start=datetime.now(UTC) - timedelta(days=3),
                         services=60)
    await import_all(client, deliveries)
    await settle(client, bound=120)
    await manual_events(client)
    await settle(client, bound=120)
    live = await read_models(database_url)
    assert len(live["incidents"]) > 50
    assert live["action_items"]
    await client.close()

    one = await rebuilt(database_url, pool, SERVICES, shards=1)
    two = await rebuilt(database_url, pool, SERVICES, shards=2)
    assert two == one
    assert without_state(one) == without_state(live)
    assert one["projector_state"]  # one snapshot, at the end


async def test_two_shards_give_the_rows_of_one_process_on_simulated_worlds(
    make_client: Any, database_url: str, pool: asyncpg.Pool
) -> None:
    """The simulation's worlds (every registered tool model), imported in time order."""
    registry = models()
    worlds = [draw(20250106 + n, registry) for n in range(40)]
    services = services_of(worlds)
    client = await make_client(projector=True, services=services)
    await import_all(client, in_time_order(worlds))
    await settle(client, bound=120)
    live = await read_models(database_url)
    await client.close()
    one = await rebuilt(database_url, pool, services, shards=1)
    assert one["incidents"]
    assert without_state(one) == without_state(live)
    assert await rebuilt(database_url, pool, services, shards=2) == one


async def test_a_log_with_a_merge_is_rebuilt_in_one_process(
    make_client: Any, database_url: str, pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manual merge may join two services' incidents (TIMELINE.md rule 10), which two
    shards could not see together: such a log is folded in one process, as documented."""
    client = await make_client(projector=True, services=SERVICES)
    await import_all(client, traffic(300, seed=3, start=datetime.now(UTC) - timedelta(days=1),
                                     services=60))
    await settle(client, bound=60)
    listing = await (await client.get("/v1/incidents", params={"limit": "50"},
                                      headers=api_headers())).json()
    by_service: dict[str, str] = {}
    for inc in listing["incidents"]:
        by_service.setdefault(inc["service"], inc["id"])
    first, second = list(by_service.values())[:2]
    response = await client.post(f"/v1/incidents/{first}/events", headers=api_headers(),
                                 json={"type": "merge", "other_id": second})
    assert response.status == 201, await response.text()
    await settle(client)
    live = await read_models(database_url)
    await client.close()

    import projections.runtime.shards as shards

    async def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("a log with a merge was sharded")

    monkeypatch.setattr(shards, "replay_sharded", refuse)
    assert without_state(await rebuilt(database_url, pool, SERVICES, shards=2)) == (
        without_state(live))


async def test_a_failing_writer_leaves_empty_read_models_and_a_catch_up_recovers(
    make_client: Any, database_url: str, pool: asyncpg.Pool
) -> None:
    """A full rebuild commits its read models once, with its checkpoint (never rows
    without their checkpoint, never a checkpoint without its rows). The writer fails
    while writing the third batch: the rebuild raises, the read models are empty at the
    start of the log, their secondary indexes all there (dropped and built again in
    that same transaction), and a catch-up from there, batch by batch, ends where a
    clean rebuild ends."""
    client = await make_client(projector=False, services=SERVICES)
    await import_deliveries_unprojected(client, traffic(
        500, seed=9, start=datetime.now(UTC) - timedelta(days=1), services=60))
    await client.close()
    async with pool.acquire() as conn:
        indexes = sorted(r[0] for r in await conn.fetch(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()"))
    calls: list[int] = []

    def fault(where: str) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("injected: the disk is full")

    with pytest.raises(rb.WriteFailed, match="disk is full"):
        await rebuilt(database_url, pool, SERVICES, batch_size=100, fault=fault)
    assert (await checkpoint(pool))["events"] == 0
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM delivery_log") == 0
        assert await conn.fetchval("SELECT count(*) FROM incidents") == 0
        assert sorted(r[0] for r in await conn.fetch(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()")) == indexes

    conn = await connect(database_url)
    try:
        await rb.catch_up(conn, EventStore(pool), engine_config_from(settings_for_tests(
            services=SERVICES)), batch_size=100)
    finally:
        await conn.close()
    caught_up = await read_models(database_url)
    assert without_state(await rebuilt(database_url, pool, SERVICES)) == (
        without_state(caught_up))


async def test_a_full_rebuild_builds_the_secondary_indexes_again(
    make_client: Any, database_url: str, pool: asyncpg.Pool
) -> None:
    """Issue 11, item 4: "secondary indexes built after a full rebuild". The rebuild
    drops them while it writes and builds them again before it commits: afterwards the
    schema holds the very same index definitions, and the rows are the live fold's."""
    client = await make_client(projector=True, services=SERVICES)
    await import_all(client, traffic(300, seed=4, start=datetime.now(UTC) - timedelta(days=1),
                                     services=30))
    await settle(client, bound=120)
    live = await read_models(database_url)
    await client.close()
    sql = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
    async with pool.acquire() as conn:
        before = sorted(tuple(r) for r in await conn.fetch(sql))
    assert any(name == "delivery_log_services" for name, _ in before)
    assert without_state(await rebuilt(database_url, pool, SERVICES)) == without_state(live)
    async with pool.acquire() as conn:
        assert sorted(tuple(r) for r in await conn.fetch(sql)) == before


async def test_a_failing_shard_leaves_empty_read_models_and_says_so(
    make_client: Any, database_url: str, pool: asyncpg.Pool
) -> None:
    """A shard that cannot connect: the rebuild raises, and the read models are empty at
    the start of the log (a projector then replays it), not half of the services."""
    client = await make_client(projector=False, services=SERVICES)
    await import_deliveries_unprojected(client, traffic(
        100, seed=2, start=datetime.now(UTC) - timedelta(days=1), services=60))
    await client.close()
    parts = urlsplit(database_url)
    elsewhere = urlunsplit(parts._replace(path="/no_such_database_for_a_shard"))
    conn = await connect(database_url)
    try:
        await rb._lock(conn)
        await reset_read_models(conn)
        from projections.runtime.shards import replay_sharded

        with pytest.raises(rb.WriteFailed, match="shard failed"):
            await replay_sharded(conn, elsewhere, engine_config_from(settings_for_tests(
                services=SERVICES)), 2, 100, None, None)
    finally:
        await conn.close()
    models = await read_models(database_url)
    assert all(not rows for name, rows in models.items() if name != "projector_checkpoint")
    assert (await checkpoint(pool))["events"] == 0


async def test_a_projector_resumes_from_the_snapshot_a_rebuild_saves_at_its_end(
    make_client: Any, database_url: str, pool: asyncpg.Pool
) -> None:
    """One snapshot at the end, its cursor at the final checkpoint; a live projector
    restores it and folds what came after as a rebuild of the whole log does."""
    start = datetime.now(UTC) - timedelta(days=2)
    deliveries = traffic(600, seed=13, start=start, services=60)
    client = await make_client(projector=False, services=SERVICES)
    await import_deliveries_unprojected(client, deliveries[:400])
    await client.close()
    await rebuilt(database_url, pool, SERVICES, shards=2)
    mark = await checkpoint(pool)
    assert (mark["snapshot_transaction_id"], mark["snapshot_position"]) == (
        mark["transaction_id"], mark["position"])

    client = await make_client(projector=True, services=SERVICES)
    await import_all(client, deliveries[400:])
    await settle(client, bound=120)
    live = await read_models(database_url)
    await client.close()
    assert without_state(await rebuilt(database_url, pool, SERVICES)) == without_state(live)


# --- Set-wise writes ------------------------------------------------------------------

async def per_row_write(conn: asyncpg.Connection, changes: Any, pending: Pending) -> None:
    """The reference: every row its own INSERT ... ON CONFLICT (as the projector wrote
    before set-wise writes), in the order the changes list them."""
    from projections.runtime.projection import incident_rows
    from projections.runtime.timeline_rows import COLUMNS, keyed
    from projections.runtime.timeline_rows import row as entry_row

    incidents = [*changes.incidents, *changes.merged]
    for row in incident_rows(incidents):
        await conn.execute(
            "DELETE FROM incidents WHERE id = $1", row[0])
        await conn.execute(
            "INSERT INTO incidents (id, service, title, severity, status, started_at, "
            "detected_at, acknowledged_at, resolved_at, detection_latency_seconds, "
            "duration_seconds, detected_by, detection_verdict, first_detector_source, public, "
            f"merged_into, version, summary, doc) VALUES "
            f"({', '.join(f'${i}' for i in range(1, 18))}, $18::json, $19::jsonb)", *row)
        await conn.execute("DELETE FROM timeline_entries WHERE incident_id = $1", row[0])
    for inc in incidents:
        for key, entry in keyed(inc.timeline).items():
            await conn.execute(
                f"INSERT INTO timeline_entries ({', '.join(COLUMNS)}) VALUES "
                f"({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 1))})",
                *entry_row(inc.id, key, entry))
    for service in changes.risks:
        await conn.execute("DELETE FROM service_risks WHERE service = $1", service)
        for r in changes.risks[service]:
            await conn.execute(
                "INSERT INTO service_risks (service, subject, kind, reason, since, position) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                r.service, r.subject, r.kind, r.reason, r.since, r.position)
    for s in changes.subjects:
        await conn.execute(
            "DELETE FROM subject_states WHERE (service, source, subject) = ($1, $2, $3)",
            s.service, s.source, s.subject)
        await conn.execute(
            "INSERT INTO subject_states (service, source, subject, kind, state, occurred_at, "
            "received_at, position, summary) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            s.service, s.source, s.subject, s.kind, s.state, s.occurred_at, s.received_at,
            s.position, s.summary)
    for (pos, idx), inc in changes.joins.items():
        await conn.execute("DELETE FROM signal_incidents WHERE (position, idx) = ($1, $2)",
                           pos, idx)
        await conn.execute("INSERT INTO signal_incidents VALUES ($1, $2, $3)", pos, idx, inc)
    for d in pending.deliveries:
        await conn.execute(
            "INSERT INTO delivery_log (position, transaction_id, source, received_at, outcome, "
            "error, signal_count, services, signals, duplicate_of) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10)", *d)


async def test_set_wise_writes_equal_per_row_writes(
    make_client: Any, database_url: str, pool: asyncpg.Pool
) -> None:
    """The same folded batches written set-wise (``projection.write``), set-wise with
    timelines as row deltas (what the live projector writes, from the rows it committed
    before: ``timeline_rows.WrittenTimelines``), and row by row give the same tables."""
    client = await make_client(projector=False, services=SERVICES)
    await import_deliveries_unprojected(client, traffic(
        800, seed=21, start=datetime.now(UTC) - timedelta(days=2), services=60))
    await client.close()
    store = EventStore(pool)
    async with pool.acquire() as conn:
        total = await conn.fetchval("SELECT count(*) FROM events")
    events = await store.read(limit=10_000)
    for _ in range(600):  # reads stop below the cluster's oldest running transaction
        if len(events) == total:
            break
        await asyncio.sleep(0.1)
        events = await store.read(limit=10_000)
    assert len(events) == total
    config = engine_config_from(settings_for_tests(services=SERVICES))
    tables = [t for t in TABLES if t not in ("projector_state", "projector_checkpoint")]
    results = []
    async def delta_write(conn: asyncpg.Connection, changes: Any, pending: Pending) -> None:
        written.committed(await write(conn, changes, pending, written))

    written = WrittenTimelines()
    for writer in (write, delta_write, per_row_write):
        projection = Projection(config)
        conn = await connect(database_url)
        try:
            await reset_read_models(conn)
            for lo in range(0, len(events), 150):
                pending = Pending()
                batch = events[lo:lo + 150]
                projection.apply(batch, pending, await stored_firsts(conn, batch))
                changes = projection.engine.take_changes()
                async with conn.transaction():
                    await writer(conn, changes, pending)
        finally:
            await conn.close()
        models = await read_models(database_url)
        results.append({t: models[t] for t in tables})
    assert results[0]["incidents"]
    assert results[0]["signal_incidents"]
    assert results[0] == results[1] == results[2]


async def test_the_rebuild_read_walks_the_read_order_index_without_sorting(
    pool: asyncpg.Pool
) -> None:
    """The rebuild's page (no bodies, ``EventStore.read(bodies=False)``) walks the
    events_read_order index like the full read (tests/ingest/test_store.py): with sorting
    priced out, a plan that still sorts is one the index cannot serve."""
    from ingest.store import _READ_LEAN

    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_sort = off")
        await conn.execute("ANALYZE events")
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {_READ_LEAN}", "0", 0, 1000))
    assert "Sort" not in plan, plan
    assert "events_read_order" in plan, plan


async def test_a_rebuild_runs_an_older_adapter_s_deliveries_again_from_their_bodies(
    make_client: Any, database_url: str, pool: asyncpg.Pool
) -> None:
    """Parse once (docs/architecture.md): a delivery stored by another adapter version is
    read again from its body; the rebuild's page leaves bodies out and fetches those.
    Deliveries stored without their signals (as before parse-once) rebuild to the rows
    of the same deliveries stored with them."""
    deliveries = traffic(200, seed=17, start=datetime.now(UTC) - timedelta(days=1),
                         services=60)
    client = await make_client(projector=False, services=SERVICES)
    await import_deliveries_unprojected(client, deliveries)
    await client.close()
    stored = without_state(await rebuilt(database_url, pool, SERVICES))
    owner = await asyncpg.connect(database_url)  # the log's owner: the service may not
    try:
        await owner.execute("ALTER TABLE events DISABLE TRIGGER USER")
        try:
            await owner.execute("UPDATE events SET data = data - 'parsed' "
                                "WHERE type = 'delivery.received'")
        finally:
            await owner.execute("ALTER TABLE events ENABLE TRIGGER USER")
    finally:
        await owner.close()
    assert without_state(await rebuilt(database_url, pool, SERVICES)) == stored
