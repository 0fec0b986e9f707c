"""POST /v1/deliveries/import and `hindsight import`: recorded deliveries, as if live."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from tests.conftest import create_test_database, drop_test_database
from tests.fixtures import load_fixture
from tests.helpers import api_headers, settings_for_tests, signed_headers
from tests.scenarios.harness import import_deliveries, moments, only_incident
from tests.scenarios.payloads import Alert, Recorded, alertmanager, at


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
        found: list[asyncpg.Record] = await conn.fetch(
            "SELECT position, received_at FROM events ORDER BY position")
        return found
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


# --- copies: detection takes the earliest receipt, whatever the import order ------------

@pytest.fixture
async def second_client(aiohttp_client: Any, pg_admin_url: str,
                        template_database: str) -> AsyncIterator[Any]:
    """``make_client`` on a database of its own, to compare two logs' answers."""
    from hindsight.app import create_app

    urls: list[str] = []

    async def make(projector: bool = False, **overrides: Any) -> Any:
        urls.append(await create_test_database(pg_admin_url, template_database))
        app = create_app(settings_for_tests(**overrides), database_url=urls[-1],
                         projector=projector)
        return await aiohttp_client(app)

    try:
        yield make
    finally:
        for url in urls:
            await drop_test_database(pg_admin_url, url)


T0 = at("2025-03-14T02:17:04Z")


def alertmanager_copy() -> Recorded:
    """A payload with its own time: the alert started 2 min before the notification."""
    return alertmanager([Alert("10.42.3.17:8080", T0 - timedelta(minutes=2))], T0)


def cronitor_copy() -> Recorded:
    """A payload timed by receipt: Cronitor's webhook has no event time
    (cronitor.io/docs/using-webhooks, "Webhook Fields")."""
    fixture = load_fixture("cronitor", "job_alert_not_run")
    return Recorded("cronitor", T0, fixture.headers, fixture.body, key="cronitor")


async def one_by_one(client: Any, deliveries: list[Recorded]) -> list[dict[str, Any]]:
    """Each delivery in its own import, so the log holds them in exactly this order."""
    return [r for d in deliveries for r in await import_deliveries(client, [d])]


@pytest.mark.parametrize(("build", "started"), [
    (alertmanager_copy, "2025-03-14T02:15:04Z"),
    (cronitor_copy, "2025-03-14T02:17:04Z"),
], ids=["own-time", "receipt-time"])
async def test_detection_takes_the_earliest_copy_whatever_order_copies_are_imported_in(
    make_client: Any, second_client: Any, build: Callable[[], Recorded], started: str
) -> None:
    """TIMELINE.md rule 11: "A duplicate changes nothing, except that detection takes the
    earliest receipt among the copies", and any permutation gives the same moments. The
    tool sent one request at T0 and retried it 30 s later (it did not hear our answer);
    imported in either order, the incident starts and is detected at the same moments,
    detected at T0 (ARCHITECTURE.md, "Idempotent appends": every copy's receipt is
    recorded)."""
    first = build()
    retry = first.retried(T0 + timedelta(seconds=30))
    in_order = await make_client(projector=True)
    reversed_order = await second_client(projector=True)
    straight = await one_by_one(in_order, [first, retry])
    backwards = await one_by_one(reversed_order, [retry, first])
    for results in (straight, backwards):
        assert [(r["status"], r["duplicate"]) for r in results] == [(202, False), (200, True)]
        assert results[1]["delivery"] == results[0]["delivery"]
    expected = moments(await only_incident(in_order))
    got = moments(await only_incident(reversed_order))
    assert expected["started_at"] == started
    assert expected["detected_at"] == "2025-03-14T02:17:04Z"
    assert got == expected


async def test_the_delivery_log_lists_each_copy_as_a_duplicate_of_the_stored_delivery(
    make_client: Any, database_url: str
) -> None:
    """API.md, GET /v1/deliveries ("what arrived, when"): a retry is not stored again,
    but its receipt is listed, pointing at the delivery stored first; re-importing the
    same recorded copies (same received_at) records nothing more."""
    client = await make_client(projector=True)
    first = cronitor_copy()
    retry = first.retried(T0 - timedelta(seconds=20))  # received earlier, imported later
    stored, copied = await one_by_one(client, [first, retry])
    response = await client.get("/v1/deliveries", headers=api_headers())
    listed = (await response.json())["deliveries"]
    assert [(d["received_at"], d["duplicate"], d["duplicate_of"]) for d in listed] == [
        ("2025-03-14T02:16:44Z", True, stored["delivery"]),
        ("2025-03-14T02:17:04Z", False, None)]
    assert listed[0]["outcome"] == listed[1]["outcome"] == "understood"
    one = await (await client.get(f"/v1/deliveries/{listed[0]['delivery']}",
                                  headers=api_headers())).json()
    assert (one["duplicate_of"], one["received_at"]) == (stored["delivery"],
                                                          "2025-03-14T02:16:44Z")
    assert one["body"] == first.body.decode()

    before = len(await rows(database_url))
    again = await one_by_one(client, [first, retry])
    assert [(r["status"], r["delivery"]) for r in again] == [(200, stored["delivery"])] * 2
    assert copied["delivery"] == stored["delivery"]
    assert len(await rows(database_url)) == before == 2
