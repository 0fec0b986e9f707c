"""POST /v1/webhooks/{source} through the running server: every row of API.md's table."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson
import pytest
from structlog.testing import capture_logs

from ingest.auth import standard_webhooks_signature
from tests.fixtures import Fixture, all_fixtures, load_fixture
from tests.helpers import SECRETS, TOKENS, signed_headers

FIXTURES = all_fixtures()


def expected_status(fixture: Fixture) -> set[int]:
    if fixture.name.startswith("invalid"):
        return {400, 422}
    return {202}


async def stored(database_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch("SELECT position, type, body, data, received_at FROM events "
                                "ORDER BY position")
    finally:
        await conn.close()


async def post(client: Any, fixture: Fixture, **extra: str) -> Any:
    headers = signed_headers(fixture.source, fixture.body, fixture.headers)
    headers.update(extra)
    return await client.post(f"/v1/webhooks/{fixture.source}", data=fixture.body, headers=headers)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f"{f.source}/{f.name}")
async def test_every_documented_payload_is_accepted_with_its_real_headers(
    client: Any, database_url: str, fixture: Fixture
) -> None:
    response = await post(client, fixture)
    body = await response.json()
    assert response.status in expected_status(fixture), body
    [row] = await stored(database_url)
    assert row["position"] == body["delivery"]
    assert bytes(row["body"]) == fixture.body


@pytest.mark.parametrize("source", sorted({f.source for f in FIXTURES}))
async def test_a_delivery_without_credentials_is_refused_and_not_stored(
    client: Any, database_url: str, source: str
) -> None:
    fixture = next(f for f in FIXTURES if f.source == source)
    response = await client.post(f"/v1/webhooks/{source}", data=fixture.body,
                                 headers=fixture.headers)
    assert response.status == 401
    assert await stored(database_url) == []


@pytest.mark.parametrize("source", sorted({f.source for f in FIXTURES}))
async def test_a_forged_credential_or_signature_is_refused(
    client: Any, database_url: str, source: str
) -> None:
    fixture = next(f for f in FIXTURES if f.source == source)
    headers = signed_headers(source, fixture.body + b" ", fixture.headers)  # signed another body
    if "Authorization" in headers:
        headers["Authorization"] = "Bearer not-the-token"
    if "X-Gitlab-Token" in headers:
        headers["X-Gitlab-Token"] = "not-the-secret"
    response = await client.post(f"/v1/webhooks/{source}", data=fixture.body, headers=headers)
    assert response.status == 401
    assert await stored(database_url) == []


async def test_a_retried_delivery_answers_as_the_first_marked_duplicate(
    client: Any, database_url: str
) -> None:
    fixture = load_fixture("alertmanager", "firing")
    first = await post(client, fixture)
    again = await post(client, fixture)
    one, two = await first.json(), await again.json()
    assert (first.status, again.status) == (202, 200)
    assert two["duplicate"] is True
    assert one["duplicate"] is False
    assert two["delivery"] == one["delivery"]
    assert two["signals"] == one["signals"]
    assert len(await stored(database_url)) == 1


async def test_a_retried_github_delivery_is_recognised_by_its_delivery_id(
    client: Any, database_url: str
) -> None:
    fixture = load_fixture("github", "deployment_status_success")
    first = await (await post(client, fixture)).json()
    # GitHub's "redeliver" sends the same X-GitHub-Delivery.
    again = await post(client, fixture)
    assert again.status == 200
    assert (await again.json())["delivery"] == first["delivery"]


async def test_github_ping_is_understood_with_no_signals(client: Any) -> None:
    response = await post(client, load_fixture("github", "ping"))
    assert response.status == 202
    assert (await response.json())["signals"] == []


async def test_a_body_that_is_not_json_is_stored_raw_and_answered_400(
    client: Any, database_url: str
) -> None:
    raw = b'{"alerts": [ this is not json'
    response = await client.post("/v1/webhooks/alertmanager", data=raw, headers={
        "Content-Type": "application/json", **signed_headers("alertmanager", raw)})
    body = await response.json()
    assert response.status == 400
    assert "not valid JSON" in body["error"]
    [row] = await stored(database_url)
    assert row["position"] == body["delivery"]
    assert bytes(row["body"]) == raw


async def test_json_the_adapter_cannot_map_is_stored_and_answered_422_with_the_first_problem(
    client: Any, database_url: str
) -> None:
    raw = orjson.dumps({"version": "4", "status": "firing", "alerts": "nope"})
    response = await client.post("/v1/webhooks/alertmanager", data=raw, headers={
        "Content-Type": "application/json", **signed_headers("alertmanager", raw)})
    body = await response.json()
    assert response.status == 422
    assert "alerts" in body["error"]
    assert [r["position"] for r in await stored(database_url)] == [body["delivery"]]


async def test_an_unknown_source_is_404(client: Any) -> None:
    response = await client.post("/v1/webhooks/nagios", data=b"{}")
    assert response.status == 404


async def test_a_source_without_credentials_configured_is_disabled(make_client: Any) -> None:
    client = await make_client(sources={"alertmanager": {"token": "t"}})
    response = await client.post("/v1/webhooks/grafana", data=b"{}",
                                 headers={"Authorization": "Bearer t"})
    assert response.status == 404


async def test_a_body_over_the_limit_is_413_and_not_stored(
    make_client: Any, database_url: str
) -> None:
    client = await make_client(max_body_bytes=2048)
    raw = b'{"pad": "' + b"x" * 4096 + b'"}'
    response = await client.post("/v1/webhooks/alertmanager", data=raw,
                                 headers=signed_headers("alertmanager", raw))
    assert response.status == 413
    assert await stored(database_url) == []


async def test_a_chunked_body_over_the_limit_is_413(make_client: Any) -> None:
    client = await make_client(max_body_bytes=2048)

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"x" * 1024

    response = await client.post("/v1/webhooks/alertmanager", data=chunks(),
                                 headers=signed_headers("alertmanager", b""))
    assert response.status == 413


async def test_a_wrong_content_type_is_415_and_still_kept(client: Any, database_url: str) -> None:
    raw = b"<alert/>"
    response = await client.post("/v1/webhooks/alertmanager", data=raw, headers={
        "Content-Type": "application/xml", **signed_headers("alertmanager", raw)})
    assert response.status == 415
    assert len(await stored(database_url)) == 1


async def test_a_query_token_works_and_never_reaches_the_logs(client: Any) -> None:
    fixture = load_fixture("uptimerobot", next(
        f.name for f in FIXTURES if f.source == "uptimerobot" and not f.name.startswith("invalid")))
    token = TOKENS["uptimerobot"]
    with capture_logs() as logs:
        response = await client.post(f"/v1/webhooks/uptimerobot?token={token}",
                                     data=fixture.body, headers=fixture.headers)
        refused = await client.post("/v1/webhooks/uptimerobot?token=guess",
                                    data=fixture.body, headers=fixture.headers)
    assert response.status == 202
    assert refused.status == 401
    text = repr(logs)
    assert token not in text
    assert "guess" not in text


async def test_native_signatures_outside_the_time_window_are_refused(client: Any) -> None:
    body = orjson.dumps({"kind": "uptime", "subject": "api", "state": "failing",
                         "occurred_at": "2025-03-14T10:00:00Z"})
    stale = datetime.now(UTC) - timedelta(minutes=6)
    headers = signed_headers("native", body, {"Content-Type": "application/json"}, at=stale)
    response = await client.post("/v1/webhooks/native", data=body, headers=headers)
    assert response.status == 401


async def test_native_accepts_any_of_several_signatures_during_rotation(client: Any) -> None:
    body = orjson.dumps({"kind": "uptime", "subject": "api", "state": "failing",
                         "occurred_at": "2025-03-14T10:00:00Z"})
    timestamp = str(int(time.time()))
    old = "whsec_" + base64.b64encode(b"an-old-secret").decode()
    good = standard_webhooks_signature(SECRETS["native"], "msg_1", timestamp, body)
    stale = standard_webhooks_signature(old, "msg_1", timestamp, body)
    response = await client.post("/v1/webhooks/native", data=body, headers={
        "Content-Type": "application/json", "webhook-id": "msg_1",
        "webhook-timestamp": timestamp, "webhook-signature": f"{stale} {good}"})
    assert response.status == 202


async def test_a_store_outage_answers_503_quickly_then_ingestion_recovers(
    client: Any, database_url: str, pg_admin_url: str
) -> None:
    name = urlsplit(database_url).path.lstrip("/")
    admin = await asyncpg.connect(pg_admin_url)
    fixture = load_fixture("alertmanager", "firing")
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = $1 AND pid <> pg_backend_pid()", name)
        started = time.monotonic()
        response = await post(client, fixture)
        assert response.status == 503
        assert time.monotonic() - started < 2.0
        ready = await client.get("/readyz")
        assert ready.status == 503
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    response = await post(client, fixture)
    assert response.status == 202
    assert (await client.get("/readyz")).status == 200
