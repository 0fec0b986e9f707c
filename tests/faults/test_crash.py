"""SIGKILL during load: nothing acknowledged is lost, nothing is stored twice, and the
read models end as a clean run's."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest

from tests.faults.conftest import ServeFactory
from tests.faults.harness import (
    Load,
    comparable,
    deliveries,
    differences,
    incidents,
    stored_bodies,
    wait_projected,
    wait_until,
)

pytestmark = pytest.mark.slow


async def test_a_server_killed_under_load_loses_no_acknowledged_delivery_and_stores_none_twice(
    serves: ServeFactory, database_url: str, clean_incidents: list[dict[str, Any]]
) -> None:
    """5,000 distinct deliveries at full speed; SIGKILL after a random number of them
    were acknowledged; restart; the client retries whatever got no answer."""
    seed = random.randrange(1 << 30)
    kill_after = random.Random(seed).randint(500, 4000)
    work = deliveries()
    serve = serves(database_url)
    serve.start()
    await serve.wait_ready()

    load = Load(work, lambda _worker, _attempt: serve.base)
    task = asyncio.create_task(load.run())
    try:
        await wait_until(lambda: load.answered_2xx >= kill_after, load, task)
        serve.kill()
        acknowledged_before_kill = load.answered_2xx
        serve.start()
        await serve.wait_ready()
        await task
    finally:
        task.cancel()

    sent = [body for bodies in work for body in bodies]
    context = f"(seed {seed}, killed after {acknowledged_before_kill} acknowledgements)"
    assert acknowledged_before_kill < len(sent), f"the kill came after the load {context}"
    unanswered = [a for a in load.all_answers() if a.status is None]
    assert unanswered, f"the kill interrupted no request {context}"
    statuses = Counter(a.status for a in load.all_answers())
    assert set(statuses) <= {202, 200, 503, None}, f"{statuses} {context}"

    # Every delivery got a 2xx in the end, and every one is stored exactly once.
    stored = Counter(await stored_bodies(database_url))
    assert sum(stored.values()) == len(sent) == len(set(sent))
    assert set(stored) == set(sent), context
    assert max(stored.values()) == 1
    # A 2xx names the position the delivery is stored at; retries name the same one.
    positions = {body: {a.body["delivery"] for a in answers
                        if a.status in (200, 202) and a.body is not None}
                 for body, answers in load.answers.items()}
    assert all(len(p) == 1 for p in positions.values()), context

    await wait_projected(database_url)
    got = await incidents(serve.base)
    assert comparable(got) == comparable(clean_incidents), (
        f"{context}\n{differences(got, clean_incidents)}")
