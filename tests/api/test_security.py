"""Who gets in, what leaks, what a hostile client can hold up (docs/security.md)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import orjson
import pytest
from aiohttp import web
from structlog.testing import capture_logs

import hindsight.app
from hindsight.app import OPEN_ROUTES, create_app
from hindsight.openapi import route_paths
from ingest.auth import standard_webhooks_signature
from tests.faults.harness import Serve, write_config
from tests.fixtures import load_fixture
from tests.helpers import API_TOKEN, SECRETS, TOKENS, api_headers, signed_headers
from tests.helpers import settings_for_tests as settings_for_tests

EVERY_SECRET = [API_TOKEN, *TOKENS.values(), *SECRETS.values()]
NATIVE_BODY = orjson.dumps({"kind": "uptime", "subject": "api", "state": "failing",
                            "occurred_at": "2025-03-14T10:00:00Z"})


async def stored_count(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        # Deliveries stored; a duplicate's receipt is a compact delivery.copy event.
        return int(await conn.fetchval(
            "SELECT count(*) FROM events WHERE type = 'delivery.received'"))
    finally:
        await conn.close()


def native_headers(msg_id: str, at: datetime, body: bytes = NATIVE_BODY,
                   secret: str = SECRETS["native"], signed_id: str | None = None
                   ) -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    signature = standard_webhooks_signature(secret, signed_id or msg_id, timestamp, body)
    return {"Content-Type": "application/json", "webhook-id": msg_id,
            "webhook-timestamp": timestamp, "webhook-signature": signature}


# --- forged and replayed signatures ------------------------------------------------------

@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6),
                                    timedelta(days=-400)], ids=["past", "future", "old"])
async def test_a_standard_webhooks_timestamp_outside_the_tolerance_is_refused(
    client: Any, database_url: str, offset: timedelta
) -> None:
    """Correctly signed, but sent (or replayed) more than 5 minutes from now."""
    headers = native_headers("msg_stale", datetime.now(UTC) + offset)
    response = await client.post("/v1/webhooks/native", data=NATIVE_BODY, headers=headers)
    assert response.status == 401
    assert await stored_count(database_url) == 0


async def test_a_timestamp_that_is_not_a_unix_time_is_refused(client: Any) -> None:
    headers = native_headers("msg_1", datetime.now(UTC))
    headers["webhook-timestamp"] = "yesterday"
    response = await client.post("/v1/webhooks/native", data=NATIVE_BODY, headers=headers)
    assert response.status == 401


async def test_a_signature_made_with_another_secret_is_refused(client: Any) -> None:
    forged = native_headers("msg_1", datetime.now(UTC), secret="whsec_Zm9yZ2VkLXNlY3JldA==")
    response = await client.post("/v1/webhooks/native", data=NATIVE_BODY, headers=forged)
    assert response.status == 401


async def test_a_signature_lifted_onto_another_webhook_id_is_refused(client: Any) -> None:
    """The id is part of what is signed: a valid signature cannot be reused for a new id."""
    lifted = native_headers("msg_2", datetime.now(UTC), signed_id="msg_1")
    response = await client.post("/v1/webhooks/native", data=NATIVE_BODY, headers=lifted)
    assert response.status == 401


async def test_a_signature_lifted_onto_another_body_is_refused(client: Any) -> None:
    headers = native_headers("msg_1", datetime.now(UTC))
    response = await client.post("/v1/webhooks/native", data=NATIVE_BODY + b" ",
                                 headers=headers)
    assert response.status == 401


async def test_a_replayed_request_within_the_tolerance_answers_as_a_duplicate_stored_once(
    client: Any, database_url: str
) -> None:
    headers = native_headers("msg_replayed", datetime.now(UTC))
    first = await client.post("/v1/webhooks/native", data=NATIVE_BODY, headers=headers)
    again = await client.post("/v1/webhooks/native", data=NATIVE_BODY, headers=headers)
    assert (first.status, again.status) == (202, 200)
    assert (await again.json())["duplicate"] is True
    assert await stored_count(database_url) == 1


async def test_a_reused_webhook_id_with_a_new_body_is_a_duplicate_not_a_second_delivery(
    client: Any, database_url: str
) -> None:
    """Standard Webhooks: the id identifies the message; a second, differently signed
    message under the same id answers as the first and is not stored."""
    first = await client.post("/v1/webhooks/native", data=NATIVE_BODY,
                              headers=native_headers("msg_reused", datetime.now(UTC)))
    other = NATIVE_BODY.replace(b"failing", b"ok")
    second = await client.post("/v1/webhooks/native", data=other,
                               headers=native_headers("msg_reused", datetime.now(UTC), other))
    assert (first.status, second.status) == (202, 200)
    assert (await second.json())["delivery"] == (await first.json())["delivery"]
    assert await stored_count(database_url) == 1


# --- the read API needs a token ----------------------------------------------------------

def protected_routes() -> Iterator[tuple[str, str]]:
    app = create_app(settings_for_tests(), database_url="postgresql://unused/unused")
    for method, path in sorted(set(route_paths(app))):
        if path.startswith("/v1/") and path not in OPEN_ROUTES:
            yield method, path.replace("{id}", "inc_x").replace("{item_id}", "ai_x")


async def test_a_route_that_only_starts_like_an_open_one_still_needs_the_api_token(
    aiohttp_client: Any, database_url: str
) -> None:
    """Open routes are matched exactly: ``/v1/status`` is public, a later
    ``/v1/status-internal`` or ``/v1/webhooks-admin`` is not (docs/security.md #6)."""
    app = create_app(settings_for_tests(), database_url=database_url)

    async def secret(request: Any) -> Any:
        return web.json_response({"internal": True})

    app.router.add_get("/v1/status-internal", secret)
    app.router.add_get("/v1/webhooks-admin", secret)
    client = await aiohttp_client(app)
    for path in ("/v1/status-internal", "/v1/webhooks-admin"):
        assert (await client.get(path)).status == 401
        assert (await client.get(path, headers=api_headers())).status == 200
    assert (await client.get("/v1/status")).status == 200


@pytest.mark.parametrize(("method", "path"), list(protected_routes()))
@pytest.mark.parametrize("credential", [None, "Bearer wrong-token",
                                        f"Bearer {TOKENS['alertmanager']}"],
                         ids=["none", "wrong", "a-source-token"])
async def test_the_read_and_manual_api_answers_401_without_an_api_token(
    client: Any, method: str, path: str, credential: str | None
) -> None:
    headers = {"Authorization": credential} if credential else {}
    response = await client.request(method.upper(), path, headers=headers, data=b"{}")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_the_api_token_works_in_the_query_for_tools_that_cannot_set_headers(
    client: Any
) -> None:
    response = await client.get(f"/v1/incidents?token={API_TOKEN}")
    assert response.status == 200


# --- nothing secret in logs or public answers --------------------------------------------

async def test_query_tokens_never_reach_the_logs(client: Any) -> None:
    fixture = load_fixture("alertmanager", "firing")
    with capture_logs() as logs:
        await client.post(f"/v1/webhooks/alertmanager?token={TOKENS['alertmanager']}",
                          data=fixture.body, headers=fixture.headers)
        await client.post("/v1/webhooks/alertmanager?token=guessed-token",
                          data=fixture.body, headers=fixture.headers)
        await client.get(f"/v1/incidents?token={API_TOKEN}")
        await client.get("/v1/incidents?token=guessed-api-token")
        await client.get("/v1/deliveries", headers={"Authorization": "Bearer guessed-bearer"})
    text = repr(logs)
    for secret in [*EVERY_SECRET, "guessed-token", "guessed-api-token", "guessed-bearer"]:
        assert secret not in text


async def test_public_answers_carry_no_secret_and_no_database_address(
    client: Any, database_url: str
) -> None:
    fixture = load_fixture("alertmanager", "firing")
    await client.post("/v1/webhooks/alertmanager", data=fixture.body,
                      headers=signed_headers("alertmanager", fixture.body, fixture.headers))
    parts = urlsplit(database_url)
    internal = [*EVERY_SECRET, parts.path.lstrip("/"), "Traceback", "asyncpg"]
    if parts.hostname:
        internal.append(parts.hostname)
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/status", "/status",
                 "/status/feed.atom", "/dashboard"):
        response = await client.get(path)
        text = await response.text()
        leaked = [word for word in internal if word and word in text]
        assert leaked == [], f"{path} shows {leaked}"


async def test_readyz_says_the_database_is_unavailable_without_saying_where_it_is(
    client: Any, database_url: str, pg_admin_url: str
) -> None:
    name = urlsplit(database_url).path.lstrip("/")
    admin = await asyncpg.connect(pg_admin_url)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = $1 AND pid <> pg_backend_pid()", name)
        response = await client.get("/readyz")
        text = await response.text()
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    assert response.status == 503
    assert set(orjson.loads(text)) <= {"status", "error"}
    assert name not in text


# --- a real `serve` process: banner, access log, parser limits ---------------------------

@pytest.fixture
async def served(tmp_path: Path, database_url: str) -> Any:
    serve = Serve("security", write_config(tmp_path / "hindsight.toml", "debug"),
                  database_url, tmp_path)
    serve.start()
    try:
        await serve.wait_ready()
        yield serve
    finally:
        serve.stop()


async def raw_exchange(serve: Serve, request: bytes, wait: float = 10.0) -> bytes:
    """Send raw bytes, return what the server answers until it closes (or ``wait``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", serve.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), wait)
    finally:
        writer.close()


@pytest.mark.slow
async def test_serve_logs_no_token_and_keeps_no_access_log(served: Serve) -> None:
    """At debug level, after token, Basic, query-token and wrong-token requests: the
    process's output (banner included) holds no secret and no request line."""
    fixture = load_fixture("alertmanager", "firing")
    async with aiohttp.ClientSession() as session:
        for url, headers in [
            (f"/v1/webhooks/alertmanager?token={TOKENS['alertmanager']}", fixture.headers),
            ("/v1/webhooks/alertmanager?token=guessed-token", fixture.headers),
            ("/v1/webhooks/alertmanager", signed_headers("alertmanager", fixture.body,
                                                         fixture.headers)),
        ]:
            async with session.post(served.base + url, data=fixture.body, headers=headers):
                pass
        for url, headers in [(f"/v1/incidents?token={API_TOKEN}", {}),
                             ("/v1/incidents", api_headers()),
                             ("/v1/incidents?token=guessed-api-token", {})]:
            async with session.get(served.base + url, headers=headers):
                pass
    served.stop()
    output = served.log.read_text(errors="replace")
    assert "delivery_stored" in output  # the log was written, at debug level
    for secret in [*EVERY_SECRET, "guessed-token", "guessed-api-token"]:
        assert secret not in output
    assert "GET /v1/incidents" not in output
    assert "<configured>" in output  # the banner names the URLs, not the secrets


@pytest.mark.slow
@pytest.mark.parametrize(("name", "request_bytes"), [
    ("a header over 8 KiB",
     b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"),
    ("more than 100 headers",
     b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-H%d: v\r\n" % n for n in range(150)) + b"\r\n"),
    ("a request line over 8 KiB", b"GET /healthz?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
], ids=lambda v: v if isinstance(v, str) else "")
async def test_oversized_request_heads_are_refused_before_any_handler(
    served: Serve, name: str, request_bytes: bytes
) -> None:
    answer = await raw_exchange(served, request_bytes)
    status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/") else b""
    assert status in {b"400", b"413", b"414", b"431"}, (name, answer[:200])


@pytest.mark.slow
async def test_a_declared_body_over_the_limit_is_refused_without_being_read(
    served: Serve, database_url: str
) -> None:
    """Content-Length of 50 MiB, nothing sent: 413 at once, the connection not held."""
    head = (f"POST /v1/webhooks/alertmanager HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {TOKENS['alertmanager']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {50 * 1024 * 1024}\r\n\r\n")
    answer = await raw_exchange(served, head.encode())
    assert answer.startswith(b"HTTP/1.1 413")
    assert await stored_count(database_url) == 0


# --- slow clients --------------------------------------------------------------------

async def test_a_client_that_sends_its_headers_then_stalls_is_cut_off(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The body idle timeout (10 s in production) shortened to half a second: 408 and
    the connection closed, instead of a handler and a socket held forever."""
    monkeypatch.setattr(hindsight.app, "BODY_IDLE_TIMEOUT", 0.5)
    client = await make_client()
    head = (f"POST /v1/webhooks/alertmanager HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {TOKENS['alertmanager']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            '{"status": "fir').encode()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    started = time.monotonic()
    try:
        writer.write(head)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), 10)
        rest = await asyncio.wait_for(reader.read(), 10)  # b"" once the server closes
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert rest == b""
    assert time.monotonic() - started < 5  # cut off after 0.5 s, not after lingering 10 s


async def test_a_slow_but_steady_body_is_not_cut_off(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hindsight.app, "BODY_IDLE_TIMEOUT", 0.5)
    client = await make_client()
    body = load_fixture("alertmanager", "firing").body

    async def trickle() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 200):
            await asyncio.sleep(0.2)
            yield body[start:start + 200]

    response = await client.post("/v1/webhooks/alertmanager", data=trickle(),
                                 headers=signed_headers("alertmanager", body,
                                                        {"Content-Type": "application/json"}))
    assert response.status == 202


# --- the database role ---------------------------------------------------------------

@pytest.mark.parametrize("statement", [
    "ALTER TABLE events ADD COLUMN sneaky text",
    "ALTER TABLE events DISABLE TRIGGER ALL",
    "DROP TABLE events",
    "DROP TRIGGER events_no_update_delete ON events",
    "UPDATE events SET type = 'x'",
    "DELETE FROM events",
    "TRUNCATE events",
    "CREATE TABLE events_copy AS SELECT * FROM events",
])
async def test_the_service_role_cannot_alter_or_rewrite_the_event_log(
    pool: asyncpg.Pool, statement: str
) -> None:
    """``pool`` connects as the service does: as ``hindsight_service``."""
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT current_user") == "hindsight_service"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)


FORGED_COLUMNS = {
    "transaction_id": "'1'::xid8",
    "recorded_at": "'2000-01-01T00:00:00Z'::timestamptz",
    "position": "1",
}


@pytest.mark.parametrize("column", sorted(FORGED_COLUMNS))
async def test_the_service_role_cannot_choose_what_the_database_stamps(
    pool: asyncpg.Pool, column: str
) -> None:
    """docs/security.md: the service role inserts only the columns ingest writes. A row
    with a forged low ``transaction_id`` would sort behind the projector's checkpoint
    and never be read (ingest/store.py's reading order), so naming it, ``recorded_at``
    or ``position`` (even with OVERRIDING SYSTEM VALUE) is refused, and nothing is stored."""
    override = " OVERRIDING SYSTEM VALUE" if column == "position" else ""
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT current_user") == "hindsight_service"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                f"INSERT INTO events (stream, stream_version, type, received_at, {column})"
                f"{override} VALUES ('forged', 1, 'delivery.received', now(), "
                f"{FORGED_COLUMNS[column]})")
        assert await conn.fetchval("SELECT count(*) FROM events") == 0


async def test_a_forged_transaction_id_or_recorded_at_is_replaced_by_the_real_one(
    database_url: str, pool: asyncpg.Pool
) -> None:
    """Even a role allowed to name every column (the owner) gets the writing transaction's
    id and the clock's time: the BEFORE INSERT trigger of schema/0005 stamps them, so
    the service role reads the row at its true place in the log."""
    owner = await asyncpg.connect(database_url)
    try:
        async with owner.transaction():
            real_xid = int(await owner.fetchval("SELECT pg_current_xact_id()::text::bigint"))
            before = await owner.fetchval("SELECT clock_timestamp()")
            await owner.execute(
                "INSERT INTO events (stream, stream_version, type, received_at, "
                "transaction_id, recorded_at) VALUES ('forged', 1, 'delivery.received', "
                "now(), '1'::xid8, '2000-01-01T00:00:00Z')")
    finally:
        await owner.close()
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT transaction_id::text::bigint AS xid, recorded_at FROM events "
            "WHERE stream = 'forged'")
    assert row["xid"] == real_xid
    assert row["recorded_at"] >= before


LEAST_PRIVILEGE_LOGIN = "hindsight_test_app"


@pytest.fixture
async def least_privilege_url(database_url: str) -> str:
    """A login that is a member of hindsight_service and nothing else, as production
    should use (the owner migrates with `hindsight migrate`, docs/security.md)."""
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f"""
            DO $$ BEGIN
                CREATE ROLE {LEAST_PRIVILEGE_LOGIN} LOGIN PASSWORD 'app-password';
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END $$""")
        await admin.execute(f"GRANT hindsight_service TO {LEAST_PRIVILEGE_LOGIN}")
    finally:
        await admin.close()
    parts = urlsplit(database_url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{LEAST_PRIVILEGE_LOGIN}:app-password@{host}").geturl()


async def test_the_service_runs_with_a_login_that_has_only_the_service_role(
    aiohttp_client: Any, least_privilege_url: str
) -> None:
    """Then even RESET ROLE gives nothing back: the login itself cannot alter the log."""
    app = create_app(settings_for_tests(), database_url=least_privilege_url, projector=True)
    client = await aiohttp_client(app)
    fixture = load_fixture("alertmanager", "firing")
    response = await client.post("/v1/webhooks/alertmanager", data=fixture.body,
                                 headers=signed_headers("alertmanager", fixture.body,
                                                        fixture.headers))
    assert response.status == 202
    assert (await client.get("/readyz")).status == 200
    conn = await asyncpg.connect(least_privilege_url)
    try:
        await conn.execute("RESET ROLE")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("ALTER TABLE events ADD COLUMN sneaky text")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM events")
    finally:
        await conn.close()


# --- every route's body is bounded (issue 12, item 12) --------------------------------

async def head_only(client: Any, path: str, length: int, wait: float = 5.0) -> bytes:
    """Send a POST's headers declaring ``length`` bytes and none of the body; return
    the answer's bytes (a server that waits for the body times out here)."""
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n")
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(head.encode())
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), wait)
    finally:
        writer.close()


async def test_an_api_body_over_the_api_limit_is_refused_from_its_content_length(
        client: Any) -> None:
    """docs/security.md row 10: the JSON API takes bodies up to API_MAX_BODY (64 KiB);
    one declaring 50 MiB is refused at once with a JSON 413, its body never read."""
    answer = await head_only(client, "/v1/incidents", 50 * 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"65536 bytes" in answer


async def test_a_chunked_api_body_is_refused_once_it_passes_the_api_limit(
        client: Any) -> None:
    """docs/security.md row 10: a body without Content-Length is read only up to the
    API's limit, then refused (JSON 413); one under the limit reaches the handler."""
    note = {"type": "note", "at": "2025-03-14T10:00:00Z", "text": "x" * 60_000}

    async def chunks(body: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    big = orjson.dumps({**note, "text": "x" * 70_000})
    response = await client.post("/v1/incidents/inc_none/events", data=chunks(big),
                                 headers={**api_headers(), "Content-Type": "application/json"})
    assert response.status == 413
    assert "65536 bytes" in (await response.json())["error"]
    small = orjson.dumps(note)
    response = await client.post("/v1/incidents/inc_none/events", data=chunks(small),
                                 headers={**api_headers(), "Content-Type": "application/json"})
    assert response.status != 413, await response.text()


async def test_the_import_is_bounded_by_its_own_setting(make_client: Any) -> None:
    """docs/security.md row 10 and docs/operations.md: POST /v1/deliveries/import takes
    up to import_max_bytes (a whole JSON Lines file, past the API's 64 KiB); over it,
    a JSON 413 naming the setting, from Content-Length or as a chunked body passes it."""
    client = await make_client(import_max_bytes=128 * 1024)
    answer = await head_only(client, "/v1/deliveries/import", 50 * 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"import_max_bytes" in answer

    async def chunks(body: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    line = b"not a recorded delivery " + b"x" * 40_000 + b"\n"
    response = await client.post("/v1/deliveries/import", data=chunks(line * 4),
                                 headers=api_headers())
    assert response.status == 413
    assert "import_max_bytes" in (await response.json())["error"]
    # Two such lines (80 KB, over the API's limit, under the import's) are read and
    # answered line by line.
    response = await client.post("/v1/deliveries/import", data=chunks(line * 2),
                                 headers=api_headers())
    assert response.status == 200, await response.text()
    assert [r["status"] for r in (await response.json())["results"]] == [400, 400]
