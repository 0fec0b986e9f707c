"""Driving a running Hindsight: import recorded deliveries, wait for the projector to
fold all of them, read the answers back through the API."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

from ingest.keys import POOL
from projections.runtime.projector import PROJECTOR
from tests.helpers import api_headers
from tests.scenarios.payloads import Recorded


def shuffled(deliveries: Sequence[Recorded], seed: int) -> list[Recorded]:
    """A random arrival order, except that a retry still follows the attempt it repeats
    (a tool only retries a request it has sent), a retry of a retry included.

    Linear: a retry met before its attempt waits under the attempt's key and is placed
    right after it (then its own waiting retries, and so on). Every delivery is placed;
    a retry whose attempt is not in the list is the caller's mistake, and says so."""
    order = list(deliveries)
    random.Random(seed).shuffle(order)
    placed: list[Recorded] = []
    keys: set[str] = set()
    waiting: dict[str, list[Recorded]] = {}
    for delivery in order:
        if delivery.retry_of is not None and delivery.retry_of not in keys:
            waiting.setdefault(delivery.retry_of, []).append(delivery)
            continue
        ready = [delivery]
        while ready:
            # Depth first, in the shuffled order: a retry right after what it repeats.
            current = ready.pop()
            placed.append(current)
            keys.add(current.key)
            ready.extend(reversed(waiting.pop(current.key, [])))
    if waiting:
        missing = sorted(waiting)[:3]
        raise ValueError(f"retries of attempts that are not in the list: {missing}")
    return placed


async def settle(client: Any, *, bound: float = 30.0) -> None:
    """Until the projector has folded every event in the log (counted, not by position:
    positions commit out of order across transactions)."""
    projector = client.app[PROJECTOR]
    async with client.app[POOL].acquire() as conn:
        total = await conn.fetchval("SELECT count(*) FROM events")

    async def caught_up() -> None:
        # The projector notifies after each batch; a fresh one may first have to win
        # leadership, so wait for the notification that reaches the total.
        async with projector.projected:
            await projector.projected.wait_for(lambda: projector.status.events >= total)

    try:
        await asyncio.wait_for(caught_up(), bound)
    except TimeoutError:
        raise AssertionError(f"the projector folded {projector.status.events} of "
                             f"{total} events") from None


async def import_deliveries(client: Any, deliveries: list[Recorded]) -> list[dict[str, Any]]:
    """POST /v1/deliveries/import, one line per delivery, in the given order; then wait
    until the projector has folded them."""
    body = b"\n".join(d.line() for d in deliveries) + b"\n"
    response = await client.post("/v1/deliveries/import", data=body, headers=api_headers())
    assert response.status == 200, await response.text()
    results: list[dict[str, Any]] = (await response.json())["results"]
    await settle(client)
    return results


async def incidents(client: Any, **query: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/incidents", params=query, headers=api_headers())
    assert response.status == 200, await response.text()
    found: list[dict[str, Any]] = (await response.json())["incidents"]
    return found


async def incident(client: Any, incident_id: str, **query: str) -> dict[str, Any]:
    response = await client.get(f"/v1/incidents/{incident_id}", params=query,
                                headers=api_headers())
    assert response.status == 200, await response.text()
    found: dict[str, Any] = await response.json()
    return found


async def only_incident(client: Any) -> dict[str, Any]:
    """The one incident there is, with its timeline."""
    [summary] = await incidents(client)
    return await incident(client, summary["id"])


def moments(doc: dict[str, Any]) -> dict[str, Any]:
    """The four moments and what is computed from them, as the API answers."""
    keys = ("started_at", "detected_at", "acknowledged_at", "resolved_at",
            "detection_latency_seconds", "duration_seconds", "status", "severity",
            "detected_by", "detection_verdict")
    return {k: doc[k] for k in keys}


def timeline(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Each entry as (at, marker, source, subject, state), in the API's order."""
    return [(e["at"], e["marker"], e["source"], e["subject"], e["state"])
            for e in doc["timeline"]]


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """An incident without what depends on arrival order by construction: its id (taken
    from whichever failure opened it), log positions and the id in a merge's text."""
    out = {k: v for k, v in doc.items() if k not in {"id", "title"}}
    if "timeline" in doc:
        out["timeline"] = [{k: v for k, v in e.items() if k != "position"}
                           for e in doc["timeline"]]
    return out
