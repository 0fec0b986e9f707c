"""Outbound action-item notifications, against a real HTTP receiver on 127.0.0.1 that
checks the Standard Webhooks signature itself (not with our code) and fails the first
request it gets."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

from projections.keys import PROJECTOR
from projections.notifier import NOTIFIER
from tests.api.test_postmortem import SERVICES, missed_cron_run, post
from tests.helpers import api_headers

SECRET = "whsec_" + base64.b64encode(b"notify-secret-key-bytes-01234").decode()


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
    app.router.add_post("/hooks", state.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    return state, str(server.make_url("/hooks"))


async def attempts(client: Any, item: str) -> list[dict[str, Any]]:
    [found] = [i for i in (await (await client.get("/v1/action-items", headers=api_headers())
                                  ).json())["action_items"] if i["id"] == item]
    notifications: list[dict[str, Any]] = found["notifications"]
    return notifications


async def test_a_new_overdue_item_is_announced_signed_once_per_reason_after_a_retry(
        receiver: tuple[Receiver, str], make_client: Any) -> None:
    state, url = receiver
    client = await make_client(projector=True, services=SERVICES,
                               notify={"urls": [url], "secret": SECRET})
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
    assert all(a["url"] == url for a in recorded)

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
