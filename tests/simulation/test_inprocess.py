"""The in-process fold stands in for the server only if it stores and folds what the server
does. The same deliveries, among them copies of identical bytes inside and outside the
retry window (ARCHITECTURE.md, "Idempotent appends": ``dedup_window_seconds``, 600 s by
default, from a stored copy's receipt), imported through the running server and through
``inprocess.ingest``, leave the same log and answer the same, and fold to the same
incidents."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import orjson

from ingest.store import RecordedEvent
from tests.scenarios.harness import incident, incidents, settle
from tests.scenarios.payloads import Recorded, at, kuma
from tests.simulation.inprocess import ingest, project, settings_for
from tests.simulation.oracle import Moments
from tests.simulation.served import post

T0 = at("2025-03-14T10:00:00Z")


def s(seconds: float) -> Any:
    return T0 + timedelta(seconds=seconds)


def again(delivery: Recorded, seconds: float) -> Recorded:
    """The same bytes received at another time (a retry, or a new report)."""
    return Recorded(delivery.source, s(seconds), delivery.headers, delivery.body,
                    key=f"{delivery.key}@{seconds}")


def deliveries() -> list[Recorded]:
    down = kuma(False, s(0), s(0.5))
    up = kuma(True, s(1200), s(1200.5))
    return [
        again(down, 300),   # a retry 5 min after the first copy: a duplicate
        down,               # the first copy, imported after its retry
        again(down, 900),   # 15 min after: a new report of the same bytes
        up,
        again(up, 1500),    # a new report of the recovery, 5 min later
        again(up, 1260),    # within a minute of the first: a duplicate
    ]


def comparable(events: list[RecordedEvent]) -> list[tuple[Any, ...]]:
    """Each event as (type, receipt, receipt of the delivery a copy repeats), sorted: the
    server commits an import's lines concurrently, so its log order is its own."""
    receipts = {e.position: e.received_at for e in events}
    return sorted((e.type, e.received_at, receipts.get(e.data.get("first", -1)))
                  for e in events)


async def test_the_in_memory_log_equals_the_servers(make_client: Any, database_url: str) -> None:
    client = await make_client(projector=True)
    await post(client, deliveries())
    await settle(client)
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT position, type, data::text AS data, received_at "
                                "FROM events ORDER BY transaction_id, position")
    finally:
        await conn.close()
    served = [RecordedEvent(r["position"], 0, "", 1, r["type"], orjson.loads(r["data"]), {},
                            None, None, None, r["received_at"], r["received_at"]) for r in rows]
    store = await ingest(settings_for({}), deliveries())
    assert comparable(store.events) == comparable(served)
    assert any(e.type == "delivery.copy" for e in store.events)  # the case is exercised

    [summary] = await incidents(client)
    served_incident = await incident(client, summary["id"])
    [folded] = project(settings_for({}), store.events).values()
    assert Moments.of(folded) == Moments.of(served_incident)
    assert Moments.of(folded).detected_at == s(0.5)  # the earliest copy's receipt
