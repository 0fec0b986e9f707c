"""Outbound action-item notifications, against a real HTTP receiver on 127.0.0.1 that
checks the Standard Webhooks signature itself (not with our code) and fails the first
request it gets. Targets are named (``[notify.targets]``): the log records the name,
never the URL, which for a chat webhook is a credential (issue 12, item 13)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from yarl import URL

from hindsight.settings import SettingsError, load_settings
from ingest.keys import POOL
from projections.reactions.notifier import NOTIFIER
from projections.runtime.projector import PROJECTOR
from tests.api.test_postmortem import SERVICES, missed_cron_run, post
from tests.helpers import api_headers

SECRET = "whsec_" + base64.b64encode(b"notify-secret-key-bytes-01234").decode()
PATH_SECRET = "T0000-B1111-XXXXpathsecretXXXX"
QUERY_SECRET = "querysecret-0123456789abcdef"


def verify(secret: str, headers: Any, body: bytes) -> bool:
    """Standard Webhooks, written from the spec: base64 HMAC-SHA256 of
    ``id.timestamp.body`` with the base64-decoded key after ``whsec_``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.removeprefix("v1,") for s in headers["webhook-signature"].split()]
    return any(hmac.compare_digest(expected, o) for o in offered)


@dataclass
class Receiver:
    fail_first: int = 1
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(SECRET, request.headers, body):
            self.refused += 1
            return web.Response(status=401)
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503)
        self.received.append({"id": request.headers["webhook-id"], **orjson.loads(body)})
        return web.Response(status=204)


@pytest.fixture
async def receiver(  # requested first by the tests: it outlives the server that calls it
aiohttp_server: Any) -> tuple[Receiver, str]:
    state = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/{token}", state.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    # Shaped like a chat webhook: the path and the query are the credential.
    return state, str(server.make_url(f"/hooks/{PATH_SECRET}").with_query(key=QUERY_SECRET))


async def attempts(client: Any, item: str) -> list[dict[str, Any]]:
    [found] = [i for i in (await (await client.get("/v1/action-items", headers=api_headers())
                                  ).json())["action_items"] if i["id"] == item]
    notifications: list[dict[str, Any]] = found["notifications"]
    return notifications


async def test_a_new_overdue_item_is_announced_signed_once_per_reason_after_a_retry(
        receiver: tuple[Receiver, str], make_client: Any) -> None:
    state, url = receiver
    client = await make_client(projector=True, services=SERVICES,
                               notify={"targets": {"ops-chat": url}, "secret": SECRET})
    notifier = client.app[NOTIFIER]
    notifier.backoff = 0.2  # the schedule is the point here, not its length
    incident = await missed_cron_run(client)
    added = await post(client, f"/v1/incidents/{incident}/action-items", {
        "title": "Shorten the reconciliation grace period", "owner": "payments team",
        "due_date": "2025-03-18"})  # long past: created and overdue at once
    item = added["item"]
    assert await client.app[PROJECTOR].wait_for(added["event"])

    async def settled() -> bool:
        done = await attempts(client, item)
        return {(a["reason"], a["status_code"]) for a in done} >= {
            ("created", 204), ("overdue", 204)}

    for _ in range(60):
        if await settled():
            break
        await notifier.wait_cycles(1)
    recorded = await attempts(client, item)
    assert state.refused == 0
    assert sorted(m["type"] for m in state.received) == ["action_item.created",
                                                         "action_item.overdue"]
    assert all(m["data"]["id"] == item for m in state.received)
    # One attempt failed (503) and was retried; every attempt is in the log.
    assert sorted((a["attempt"], a["status_code"]) for a in recorded
                  if a["status_code"] != 204) == [(1, 503)]
    assert len(recorded) == 3
    assert all(a["target"] == "ops-chat" for a in recorded)

    # More cycles, and a change to the item: nothing is sent twice.
    answer = await post(client, f"/v1/action-items/{item}/events",
                        {"type": "assign", "owner": "payments on-call"})
    assert await client.app[PROJECTOR].wait_for(answer["event"])
    assert await notifier.wait_cycles(3)
    assert len(state.received) == 2
    assert len(await attempts(client, item)) == 3


async def test_a_receiver_that_keeps_failing_gets_a_bounded_number_of_attempts(
        receiver: tuple[Receiver, str], make_client: Any) -> None:
    state, url = receiver
    state.fail_first = 1000
    client = await make_client(projector=True, services=SERVICES,
                               notify={"urls": [url], "secret": SECRET})
    notifier = client.app[NOTIFIER]
    notifier.backoff = 0.05
    incident = await missed_cron_run(client)
    added = await post(client, f"/v1/incidents/{incident}/action-items", {
        "title": "Add a runbook for missed runs", "due_date": "2099-01-01"})
    assert await client.app[PROJECTOR].wait_for(added["event"])
    for _ in range(100):
        if len(await attempts(client, added["item"])) >= notifier.max_attempts:
            break
        await notifier.wait_cycles(1)
    assert await notifier.wait_cycles(3)
    recorded = await attempts(client, added["item"])
    assert [a["attempt"] for a in recorded] == list(range(1, notifier.max_attempts + 1))
    assert {a["status_code"] for a in recorded} == {503}
    assert state.received == []


async def test_a_process_that_does_not_lead_the_projector_sends_nothing(
        receiver: tuple[Receiver, str], make_client: Any) -> None:
    state, url = receiver
    leader = await make_client(projector=True, services=SERVICES)
    incident = await missed_cron_run(leader)
    follower = await make_client(projector=True, services=SERVICES,
                                 notify={"urls": [url], "secret": SECRET})
    added = await post(leader, f"/v1/incidents/{incident}/action-items",
                       {"title": "Add a runbook for missed runs"})
    assert await leader.app[PROJECTOR].wait_for(added["event"])
    assert not follower.app[PROJECTOR].status.leader
    assert await follower.app[NOTIFIER].wait_cycles(3)
    assert state.received == []
    assert state.fail_first == 1  # not even a first request arrived
    assert await attempts(leader, added["item"]) == []


async def stored_events(client: Any) -> list[dict[str, Any]]:
    async with client.app[POOL].acquire() as conn:
        rows = await conn.fetch("SELECT type, data::text, metadata::text, idempotency_key "
                                "FROM events ORDER BY position")
    return [dict(r) for r in rows]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: connecting is refused


async def test_no_target_url_is_stored_in_the_log_only_its_name(
        receiver: tuple[Receiver, str], make_client: Any) -> None:
    """Issue 12, item 13: the attempt events' data, metadata and idempotency keys name
    the target; no URL, host, path or query string of a target reaches the log, whether
    the attempt was delivered, refused (503) or could not connect (the error's text)."""
    state, url = receiver
    dead = (f"http://127.0.0.1:{closed_port()}/hooks/dead-path-secret-4242"
            "?key=dead-query-secret-4242")
    client = await make_client(projector=True, services=SERVICES, notify={
        "targets": {"ops-chat": url, "dead-end": dead}, "secret": SECRET})
    notifier = client.app[NOTIFIER]
    notifier.backoff = 0.05
    incident = await missed_cron_run(client)
    added = await post(client, f"/v1/incidents/{incident}/action-items",
                       {"title": "Add a runbook for missed runs", "due_date": "2099-01-01"})
    assert await client.app[PROJECTOR].wait_for(added["event"])
    for _ in range(100):
        done = await attempts(client, added["item"])
        if (("ops-chat", 204) in {(a["target"], a["status_code"]) for a in done}
                and sum(a["target"] == "dead-end" for a in done) >= 2):
            break
        await notifier.wait_cycles(1)
    done = await attempts(client, added["item"])
    assert {(a["target"], a["status_code"]) for a in done} >= {
        ("ops-chat", 503), ("ops-chat", 204), ("dead-end", None)}
    assert all(a["error"] for a in done if a["target"] == "dead-end")
    assert len(state.received) == 1

    events = await stored_events(client)
    recorded = [e for e in events if e["type"] == "action_item.notification_attempted"]
    # The notifier keeps retrying the dead target meanwhile: the log may already hold
    # attempts the read model has not folded yet, never fewer.
    assert len(recorded) >= len(done)
    forbidden = [url, dead, PATH_SECRET, QUERY_SECRET, "dead-path-secret-4242",
                 "dead-query-secret-4242", URL(url).raw_authority, URL(dead).raw_authority]
    leaks = sorted({(e["type"], part, secret) for e in events
                    for part in ("data", "metadata", "idempotency_key")
                    for secret in forbidden if secret in (e[part] or "")})
    assert leaks == []
    assert all("ops-chat" in e["idempotency_key"] or "dead-end" in e["idempotency_key"]
               for e in recorded)
    # Nor does the API hand the URL out with the item.
    listing = await (await client.get("/v1/action-items", headers=api_headers())).text()
    assert not any(secret in listing for secret in forbidden[:6])


async def test_the_old_unnamed_url_list_still_works_as_targets_named_in_order(
        receiver: tuple[Receiver, str], make_client: Any) -> None:
    """``[notify] urls = [...]`` from earlier versions: target-1, target-2, ..."""
    state, url = receiver
    state.fail_first = 0
    client = await make_client(projector=True, services=SERVICES,
                               notify={"urls": [url], "secret": SECRET})
    notifier = client.app[NOTIFIER]
    incident = await missed_cron_run(client)
    added = await post(client, f"/v1/incidents/{incident}/action-items",
                       {"title": "Add a runbook for missed runs", "due_date": "2099-01-01"})
    assert await client.app[PROJECTOR].wait_for(added["event"])
    for _ in range(60):
        if await attempts(client, added["item"]):
            break
        await notifier.wait_cycles(1)
    assert [(a["target"], a["status_code"]) for a in await attempts(client, added["item"])] \
        == [("target-1", 204)]
    events = await stored_events(client)
    assert not any(QUERY_SECRET in (e["data"] + (e["idempotency_key"] or "")) for e in events)


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ({"https://hooks.example.com/x": "https://hooks.example.com/x"}, "target name"),
        ({"ops-chat": "ftp://hooks.example.com/x?key=s3cret"}, "must be an http(s) URL"),
        ({"target-1": "https://hooks.example.com/y"}, "also the name given"),
    ],
)
def test_a_target_that_is_not_a_name_and_an_http_url_is_refused_at_start(
        targets: dict[str, str], message: str, tmp_path: Path) -> None:
    """Named without ':' or '/', so a URL can never stand in the log as a name; the
    error names the setting and never repeats the URL."""
    lines = ["[notify]", 'urls = ["https://hooks.example.com/z"]', f'secret = "{SECRET}"',
             "[notify.targets]", *(f'"{k}" = "{v}"' for k, v in targets.items())]
    config = tmp_path / "hindsight.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"^notify(\.targets)? \(or HINDSIGHT_NOTIFY") as err:
        load_settings(config=config, environ={})
    assert message in str(err.value)
    assert "s3cret" not in str(err.value)
