"""``hindsight serve`` as a supervisor of processes (issue 11, item 2): one projector
process and ``--workers`` HTTP workers on one port; children restarted when they die,
stopped with serve, and gone with it when it is SIGKILLed (a worker left behind would
keep the port and a dead serve's projector lock)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime

import aiohttp
import pytest

from tests.faults.conftest import ServeFactory
from tests.faults.harness import (
    Serve,
    alert_delivery,
    alive,
    incidents,
    stored_bodies,
    wait_projected,
)
from tests.helpers import API_TOKEN, TOKENS

pytestmark = pytest.mark.slow


async def wait_for(check: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.05)


async def started(serve: Serve, names: set[str]) -> dict[str, int]:
    await serve.wait_ready()
    await wait_for(lambda: set(serve.children()) == names, 20, f"children {names}")
    return serve.children()


async def post(serve: Serve, session: aiohttp.ClientSession, body: bytes) -> int:
    async with session.post(f"{serve.base}/v1/webhooks/alertmanager", data=body,
                            headers={"Authorization": f"Bearer {TOKENS['alertmanager']}",
                                     "Content-Type": "application/json"}) as resp:
        return resp.status


async def understood(serve: Serve) -> float:
    async with aiohttp.ClientSession() as session, session.get(f"{serve.base}/metrics") as r:
        text = await r.text()
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("hindsight_deliveries_total{")
               and 'source="alertmanager"' in line and 'outcome="understood"' in line)


async def test_workers_share_one_port_beside_one_projector_and_all_answer(
    serves: ServeFactory, database_url: str
) -> None:
    """--workers 3: three HTTP processes and one projector; connections spread over the
    workers (each worker's requests are counted in /metrics' per-process sums)."""
    serve = serves(database_url)
    serve.extra = ("--workers", "3")
    serve.start()
    children = await started(serve, {"projector", "http-0", "http-1", "http-2"})
    assert len(set(children.values())) == 4
    bodies = [alert_delivery(s, 0, q) for s in range(3) for q in range(10)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        statuses = await asyncio.gather(*(post(serve, s, b) for b in bodies))
    assert Counter(statuses) == {202: len(bodies)}
    # /metrics, whichever worker answers, sums the processes: every delivery counted once.
    for _ in range(3):
        assert await understood(serve) == len(bodies)
    # The projector wins its lock and reports it (every 0.2 s) on its own time.
    deadline = asyncio.get_running_loop().time() + 30
    while await serve.metric("hindsight_projector_leader") != 1.0:
        assert asyncio.get_running_loop().time() < deadline, "no projector leads"
        await asyncio.sleep(0.2)
    # Reads that replay the log (as_of) work in workers that run no projector.
    await wait_projected(database_url)
    [first, *_] = await incidents(serve.base)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_TOKEN}"}) as s:
        url = f"{serve.base}/v1/incidents/{first['id']}"
        async with s.get(url, params={"as_of": datetime.now(UTC).isoformat()}) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["id"] == first["id"]


async def test_a_dead_projector_or_worker_is_restarted(
    serves: ServeFactory, database_url: str
) -> None:
    serve = serves(database_url)
    serve.extra = ("--workers", "2")
    serve.start()
    before = await started(serve, {"projector", "http-0", "http-1"})
    os.kill(before["projector"], signal.SIGKILL)
    os.kill(before["http-0"], signal.SIGKILL)
    await wait_for(lambda: serve.children().get("projector", before["projector"])
                   != before["projector"], 15, "the projector restarted")
    await wait_for(lambda: serve.children().get("http-0", before["http-0"])
                   != before["http-0"], 15, "the worker restarted")
    assert serve.children()["http-1"] == before["http-1"]  # the others are left alone
    deadline = time.monotonic() + 15
    while await serve.metric("hindsight_projector_leader") != 1.0:  # the new one leads
        assert time.monotonic() < deadline, "the restarted projector does not lead"
        await asyncio.sleep(0.1)


async def test_sigterm_stops_every_child_within_the_shutdown_timeout(
    serves: ServeFactory, database_url: str
) -> None:
    serve = serves(database_url)
    serve.extra = ("--workers", "2")
    serve.start()
    children = await started(serve, {"projector", "http-0", "http-1"})
    assert serve.proc is not None
    began = time.monotonic()
    serve.proc.send_signal(signal.SIGTERM)
    assert serve.proc.wait(15) == 0
    assert time.monotonic() - began < 12  # shutdown timeout (10 s) and a margin
    assert not [pid for pid in children.values() if alive(pid)]
    assert "Traceback" not in serve.tail()


async def test_a_sigkilled_serve_takes_its_children_with_it_and_loses_no_acknowledged_delivery(
    serves: ServeFactory, database_url: str
) -> None:
    """SIGKILL gives the supervisor no chance to stop anything: the children must die
    by themselves (the port freed, the projector lock released) and every delivery
    answered 202 before the kill is in the log."""
    serve = serves(database_url)
    serve.extra = ("--workers", "2")
    serve.start()
    children = await started(serve, {"projector", "http-0", "http-1"})
    acknowledged: list[bytes] = []
    async with aiohttp.ClientSession() as session:
        for q in range(15):
            body = alert_delivery(7, 0, q)
            if await post(serve, session, body) == 202:
                acknowledged.append(body)
    serve.kill()
    await wait_for(lambda: not [p for p in children.values() if alive(p)], 5,
                   "the children died with serve")
    assert set(acknowledged) <= set(await stored_bodies(database_url))
    serve.start()  # the same port: nothing of the old serve holds it
    await started(serve, {"projector", "http-0", "http-1"})
    deadline = time.monotonic() + 10
    while await serve.metric("hindsight_projector_leader") != 1.0:
        assert time.monotonic() < deadline, "the lock of the killed serve is still held"
        await asyncio.sleep(0.1)
