"""POST /v1/deliveries/import and `hindsight import`: recorded deliveries, as if live."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from tests.fixtures import load_fixture
from tests.helpers import api_headers, signed_headers


def record(source: str, name: str, received_at: str) -> bytes:
    fixture = load_fixture(source, name)
    at = datetime.fromisoformat(received_at.replace("Z", "+00:00"))
    return orjson.dumps({
        "source": source,
        "received_at": received_at,
        "headers": signed_headers(source, fixture.body, fixture.headers, at=at),
        "body": fixture.body.decode(),
    })


async def rows(database_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch("SELECT position, received_at FROM events ORDER BY position")
    finally:
        await conn.close()


async def test_an_import_stores_deliveries_with_their_recorded_times_once(
    client: Any, database_url: str
) -> None:
    lines = b"\n".join([
        record("alertmanager", "firing", "2025-03-14T10:02:40Z"),
        record("native", "failing", "2025-03-14T10:01:00Z"),
        record("github", "deployment_status_success", "2025-03-14T09:50:00Z"),
    ]) + b"\n"
    response = await client.post("/v1/deliveries/import", data=lines, headers=api_headers())
    results = (await response.json())["results"]
    assert [r["status"] for r in results] == [202, 202, 202]
    assert [r["line"] for r in results] == [1, 2, 3]
    stored = await rows(database_url)
    assert sorted(r["received_at"] for r in stored) == [
        datetime(2025, 3, 14, 9, 50, tzinfo=UTC),
        datetime(2025, 3, 14, 10, 1, tzinfo=UTC),
        datetime(2025, 3, 14, 10, 2, 40, tzinfo=UTC),
    ]

    again = await client.post("/v1/deliveries/import", data=lines, headers=api_headers())
    second = (await again.json())["results"]
    assert [r["status"] for r in second] == [200, 200, 200]
    assert all(r["duplicate"] for r in second)
    assert [r["delivery"] for r in second] == [r["delivery"] for r in results]
    assert len(await rows(database_url)) == 3


async def test_signature_windows_are_measured_from_the_recorded_time(client: Any) -> None:
    """A Standard Webhooks signature made at the recorded time is valid on import even
    though that time is long past; the same headers a day later are refused."""
    good = record("native", "failing", "2025-03-14T10:01:00Z")
    moved = orjson.loads(good)
    moved["received_at"] = "2025-03-15T10:01:00Z"
    response = await client.post("/v1/deliveries/import", headers=api_headers(),
                                 data=good + b"\n" + orjson.dumps(moved))
    assert [r["status"] for r in (await response.json())["results"]] == [202, 401]


async def test_each_bad_line_gets_its_own_error_and_the_rest_land(client: Any) -> None:
    lines = b"\n".join([
        b"not json",
        orjson.dumps({"source": "alertmanager", "received_at": "yesterday", "body": "{}"}),
        record("alertmanager", "firing", "2025-03-14T10:02:40Z"),
    ])
    results = (await (await client.post("/v1/deliveries/import", data=lines,
                                        headers=api_headers())).json())["results"]
    assert [r["status"] for r in results] == [400, 400, 202]
    assert "received_at" in results[1]["error"]


async def test_the_import_needs_an_api_token(client: Any) -> None:
    response = await client.post("/v1/deliveries/import", data=b"")
    assert response.status == 401
