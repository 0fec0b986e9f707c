"""Worlds through a real running server: import their deliveries in a given arrangement,
read every service's incidents back through the API, and check each world against the
oracle. Many worlds share one server (their names carry the world's prefix)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tests.helpers import api_headers
from tests.scenarios.harness import settle, shuffled
from tests.scenarios.payloads import Recorded
from tests.simulation.inprocess import HARNESS_FAULTS
from tests.simulation.oracle import Moments, check
from tests.simulation.worlds import World

CHUNK = 3000  # lines per POST /v1/deliveries/import
SETTLE_BOUND = 300.0


@dataclass(frozen=True)
class Failure:
    seed: int
    message: str


def services_of(worlds: Sequence[World]) -> dict[str, list[str]]:
    """The ``[services]`` setting every world needs."""
    union: dict[str, list[str]] = {}
    for world in worlds:
        for service, globs in world.service_globs.items():
            union.setdefault(service, []).extend(globs)
    return union


def in_time_order(worlds: Sequence[World]) -> list[Recorded]:
    return sorted((d for w in worlds for d in w.deliveries), key=lambda d: d.received_at)


def in_random_order(worlds: Sequence[World], seed: int) -> list[Recorded]:
    """Any order, except that a retry follows the attempt it repeats."""
    return shuffled([d for w in worlds for d in w.deliveries], seed)


def two_halves(worlds: Sequence[World], seed: int) -> tuple[list[Recorded], list[Recorded]]:
    """Each delivery to one of two importers at random; each importer in time order."""
    rng = random.Random(seed)
    halves: tuple[list[Recorded], list[Recorded]] = ([], [])
    for delivery in in_time_order(worlds):
        halves[rng.randrange(2)].append(delivery)
    return halves


async def post(client: Any, deliveries: Sequence[Recorded]) -> None:
    """Import in chunks; every line must be authentic (``HARNESS_FAULTS``)."""
    for start in range(0, len(deliveries), CHUNK):
        chunk = deliveries[start:start + CHUNK]
        body = b"\n".join(d.line() for d in chunk) + b"\n"
        response = await client.post("/v1/deliveries/import", data=body, headers=api_headers())
        assert response.status == 200, await response.text()
        refused = [r for r in (await response.json())["results"]
                   if r["status"] in HARNESS_FAULTS]
        assert not refused, refused[:3]


async def import_all(client: Any, *importers: Sequence[Recorded]) -> None:
    """Every importer posts its deliveries at once; then wait for the projector."""
    await asyncio.gather(*(post(client, deliveries) for deliveries in importers))
    await settle(client, bound=SETTLE_BOUND)


async def get(client: Any, path: str, **params: str) -> Any:
    response = await client.get(path, params=params, headers=api_headers())
    assert response.status == 200, await response.text()
    return await response.json()


async def answers(client: Any, service: str) -> list[Moments]:
    """The service's incidents (GET /v1/incidents?service=), each read in full
    (GET /v1/incidents/{id}); the listing's moments must agree with the incident's."""
    listed = (await get(client, "/v1/incidents", service=service, limit="1000"))["incidents"]
    out = []
    for summary in listed:
        full = await get(client, f"/v1/incidents/{summary['id']}")
        assert Moments.of(summary) == Moments.of(full), (summary, full)
        out.append(Moments.of(full))
    return out


async def check_worlds(client: Any, worlds: Sequence[World], variant: str) -> list[Failure]:
    """Every world against the oracle; the failures, one per world that fails."""
    failures = []
    for world in worlds:
        actual = {name: await answers(client, name) for name in world.services}
        try:
            check(world.seed, world.reports, actual, world.by_service, variant,
                  world.monitors_by_service)
        except AssertionError as failed:
            failures.append(Failure(world.seed, str(failed)))
    return failures
