"""POST /v1/webhooks/{source} through the running server: every row of API.md's table."""

from __future__ import annotations

import asyncio
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
from ingest.webhooks import delivery_id
from tests.fixtures import Fixture, all_fixtures, load_fixture
from tests.helpers import SECRETS, TOKENS, api_headers, live_body, signed_headers
from tests.scenarios.harness import incidents, only_incident, settle
from tests.scenarios.payloads import Alert, alertmanager

FIXTURES = all_fixtures()


def expected_status(fixture: Fixture) -> set[int]:
    if fixture.name.startswith("invalid"):
        return {400, 422}
    return {202}


async def stored(database_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT position, type, body, data, received_at FROM events ORDER BY position")
        return rows
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
    sent = live_body(fixture.source, fixture.body, datetime.now(UTC))  # SNS: re-signed now
    response = await client.post(f"/v1/webhooks/{fixture.source}", data=sent,
                                 headers=signed_headers(fixture.source, sent, fixture.headers))
    body = await response.json()
    assert response.status in expected_status(fixture), body
    [row] = await stored(database_url)
    assert row["position"] == body["delivery"]
    assert bytes(row["body"]) == sent


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


async def test_a_retry_within_the_window_answers_as_the_first_and_its_receipt_is_recorded(
    client: Any, database_url: str
) -> None:
    """ARCHITECTURE.md, "Idempotent appends" and API.md's 200 row: identical bytes from a
    tool that sends no delivery id, within ``dedup_window_seconds`` of the first copy,
    are a retry: answered 200 as the first delivery was, stored once, and the copy's
    receipt is recorded (a compact event pointing at the first, no body)."""
    fixture = load_fixture("alertmanager", "firing")
    first = await post(client, fixture)
    again = await post(client, fixture)
    one, two = await first.json(), await again.json()
    assert (first.status, again.status) == (202, 200)
    assert two["duplicate"] is True
    assert one["duplicate"] is False
    assert two["delivery"] == one["delivery"]
    assert two["signals"] == one["signals"]
    rows = await stored(database_url)
    assert [r["type"] for r in rows] == ["delivery.received", "delivery.copy"]
    copy = orjson.loads(rows[1]["data"])
    assert copy["first"] == one["delivery"]
    assert rows[1]["body"] is None
    assert rows[1]["received_at"] > rows[0]["received_at"]


async def test_identical_bytes_after_the_window_are_a_new_report(make_client: Any,
                                                                  database_url: str) -> None:
    """ARCHITECTURE.md, "Idempotent appends": the same bytes after the retry window are
    a new report, not a retry (Alertmanager re-sends a firing group byte for byte every
    ``repeat_interval``): 202, stored as a delivery of its own. A short window here, so
    the live path can pass it."""
    client = await make_client(dedup_window_seconds=0.3)
    fixture = load_fixture("alertmanager", "firing")
    first = await post(client, fixture)
    await asyncio.sleep(0.4)
    later = await post(client, fixture)
    one, two = await first.json(), await later.json()
    assert (first.status, later.status) == (202, 202)
    assert two["duplicate"] is False
    assert two["delivery"] != one["delivery"]
    assert [r["type"] for r in await stored(database_url)] == ["delivery.received"] * 2


def recorded(source: str, body: bytes, headers: dict[str, str], received_at: datetime) -> bytes:
    """One import line (API.md, "Importing recorded deliveries"), signed as sent then."""
    return orjson.dumps({
        "source": source,
        "received_at": received_at.isoformat().replace("+00:00", "Z"),
        "headers": signed_headers(source, body, headers, at=received_at),
        "body": body.decode(),
    })


async def import_lines(client: Any, lines: list[bytes]) -> list[dict[str, Any]]:
    response = await client.post("/v1/deliveries/import", data=b"\n".join(lines),
                                 headers=api_headers())
    assert response.status == 200, await response.text()
    results: list[dict[str, Any]] = (await response.json())["results"]
    return results


async def test_an_alertmanager_resend_two_hours_later_is_stored_and_counted_as_a_repeat(
    make_client: Any,
) -> None:
    """Alertmanager re-sends a firing group every ``repeat_interval`` ("How long to wait
    before sending a notification again if it has already been sent successfully for an
    alert", default 4h: prometheus.io/docs/alerting/latest/configuration/#route), byte
    for byte while nothing changed (a firing alert's ``endsAt`` is Go's zero time). Sent
    2 h apart (a ``repeat_interval: 2h``), the two are two reports: both stored (202),
    and the second is a repeat of the same failure (TIMELINE.md rule 4), not dropped."""
    client = await make_client(projector=True)
    alert = Alert("10.42.3.17:8080", datetime(2025, 3, 14, 10, 0, tzinfo=UTC))
    sent = alertmanager([alert], datetime(2025, 3, 14, 10, 0, 30, tzinfo=UTC))
    assert b'"endsAt":"0001-01-01T00:00:00Z"' in sent.body
    resent = sent.received_at + timedelta(hours=2)
    lines = [recorded("alertmanager", sent.body, sent.headers, sent.received_at),
             recorded("alertmanager", sent.body, sent.headers, resent)]
    results = await import_lines(client, lines)
    assert [(r["status"], r["duplicate"]) for r in results] == [(202, False), (202, False)]
    assert results[0]["delivery"] != results[1]["delivery"]
    await settle(client)
    doc = await only_incident(client)
    [failure] = [e for e in doc["timeline"] if e["marker"] == "started"]
    assert failure["repeats"] == 1
    assert failure["last_repeat_at"] == "2025-03-14T12:00:30Z"
    assert doc["detected_at"] == "2025-03-14T10:00:30Z"


async def test_a_cronitor_job_failing_again_another_day_is_a_second_outage(
    make_client: Any,
) -> None:
    """Cronitor's webhook carries no event time and no run id (cronitor.io/docs/
    using-webhooks, "Webhook Fields"), so a job that misses its run on Monday and again
    on Friday sends the identical ALERT body, and the identical RECOVERY after each.
    Days apart, far outside the retry window, each is a report of its own: stored (202),
    two outages, two incidents (TIMELINE.md rules 1 and 3)."""
    client = await make_client(projector=True)
    alert, recovery = (load_fixture("cronitor", n) for n in ("job_alert_not_run",
                                                             "job_recovery"))
    monday = datetime(2025, 3, 10, 2, 17, 4, tzinfo=UTC)
    friday = monday + timedelta(days=4)
    lines = [recorded("cronitor", f.body, f.headers, day + offset)
             for day in (monday, friday)
             for f, offset in ((alert, timedelta(0)), (recovery, timedelta(minutes=24)))]
    results = await import_lines(client, lines)
    assert [(r["status"], r["duplicate"]) for r in results] == [(202, False)] * 4
    await settle(client)
    found = sorted((i["started_at"], i["resolved_at"]) for i in await incidents(client))
    assert found == [("2025-03-10T02:17:04Z", "2025-03-10T02:41:04Z"),
                     ("2025-03-14T02:17:04Z", "2025-03-14T02:41:04Z")]


async def test_a_retried_github_delivery_is_recognised_by_its_delivery_id(
    client: Any, database_url: str
) -> None:
    fixture = load_fixture("github", "deployment_status_success")
    first = await (await post(client, fixture)).json()
    # GitHub's "redeliver" sends the same X-GitHub-Delivery.
    again = await post(client, fixture)
    assert again.status == 200
    assert (await again.json())["delivery"] == first["delivery"]


async def test_a_resent_gitlab_delivery_is_recognised_by_its_idempotency_key(
    client: Any, database_url: str
) -> None:
    """GitLab's webhook docs, "Delivery headers" (docs.gitlab.com/user/project/
    integrations/webhooks/#delivery-headers): ``Idempotency-Key`` is a "unique ID that
    remains consistent across webhook retries"; ``X-Gitlab-Webhook-UUID`` is unique per
    request, and "Resend request" on a hook's Recent events executes the hook again (a
    new ``X-Gitlab-Event-UUID``, gitlab-org/gitlab WebHookService) with the stored key.
    ARCHITECTURE.md "Idempotent appends": a resend answers as the first delivery did and
    is stored once (its receipt as a copy), so the deploy is not listed twice. The key
    is kept with the delivery, as the log shows what arrived."""
    fixture = load_fixture("gitlab", "deployment_success")
    first = await post(client, fixture)
    resend = await post(client, fixture, **{
        "X-Gitlab-Event-UUID": "6f0e3c55-2a43-4f7e-9b5d-8e1c0a7d4b21",
        "X-Gitlab-Webhook-UUID": "d2b7a9c4-1e3f-4a6b-8c5d-7e9f0a1b2c3d"})
    one, two = await first.json(), await resend.json()
    assert (first.status, resend.status) == (202, 200)
    assert two["duplicate"] is True
    assert two["delivery"] == one["delivery"]
    rows = await stored(database_url)
    assert [r["type"] for r in rows] == ["delivery.received", "delivery.copy"]
    kept = orjson.loads(rows[0]["data"])["headers"]
    assert kept["idempotency-key"] == fixture.headers["Idempotency-Key"]


async def test_gitlab_deliveries_with_their_own_idempotency_keys_are_all_stored(
    client: Any, database_url: str
) -> None:
    """GitLab's webhook docs, "Delivery headers": every hook execution gets its own
    ``Idempotency-Key`` and ``X-Gitlab-Webhook-UUID``; a pipeline's status changes and
    its deployment's are distinct deliveries (docs.gitlab.com/user/project/integrations/
    webhook_events/#pipeline-events, #deployment-events), none a duplicate of another."""
    names = ("pipeline_failed", "deployment_running", "deployment_failed",
             "deployment_success", "pipeline_success")
    answers = [await post(client, load_fixture("gitlab", name)) for name in names]
    assert [a.status for a in answers] == [202] * len(names)
    rows = await stored(database_url)
    assert [r["type"] for r in rows] == ["delivery.received"] * len(names)


def test_gitlabs_idempotency_key_is_its_delivery_id_before_its_event_uuid() -> None:
    """GitLab's webhook docs, "Delivery headers": ``Idempotency-Key`` stays the same
    across retries, ``X-Gitlab-Event-UUID`` does not survive a resend; GitLab before 17.4
    sends no key, and its event UUID is then the delivery id (ARCHITECTURE.md)."""
    fixture = load_fixture("gitlab", "pipeline_failed")
    lower = {k.lower(): v for k, v in fixture.headers.items()}
    resent = dict(lower, **{"x-gitlab-event-uuid": "6f0e3c55-2a43-4f7e-9b5d-8e1c0a7d4b21"})
    assert delivery_id("gitlab", resent, fixture.body) == delivery_id(
        "gitlab", lower, fixture.body) == (
        f"gitlab:idempotency-key:{lower['idempotency-key']}", False)
    older = {k: v for k, v in lower.items() if k != "idempotency-key"}
    assert delivery_id("gitlab", older, fixture.body) == (
        f"gitlab:x-gitlab-event-uuid:{lower['x-gitlab-event-uuid']}", False)


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
    client = await make_client(sources={"alertmanager": {"token": "alertmanager-only-token"}})
    response = await client.post("/v1/webhooks/grafana", data=b"{}",
                                 headers={"Authorization": "Bearer alertmanager-only-token"})
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
