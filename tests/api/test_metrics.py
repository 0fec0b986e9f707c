"""GET /metrics: every metric docs/operations.md lists, fed by real traffic."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from projections.keys import PROJECTOR
from tests.fixtures import load_fixture
from tests.helpers import signed_headers

DOCUMENTED = ("hindsight_deliveries_total", "hindsight_request_seconds",
              "hindsight_append_seconds", "hindsight_group_commit_batch_size",
              "hindsight_projector_lag_events", "hindsight_projector_lag_seconds",
              "hindsight_projector_leader", "hindsight_open_incidents")


def sample(text: str, name: str, labels: str = "") -> float | None:
    pattern = rf"^{re.escape(name)}{re.escape(labels) if labels else ''}(?:\{{[^}}]*\}})? (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else None


async def test_every_documented_metric_is_exported_and_fed(make_client: Any) -> None:
    client = await make_client(projector=True)
    fixture = load_fixture("alertmanager", "firing")
    response = await client.post("/v1/webhooks/alertmanager", data=fixture.body,
                                 headers=signed_headers("alertmanager", fixture.body,
                                                        fixture.headers))
    delivery = (await response.json())["delivery"]
    assert await client.app[PROJECTOR].wait_for(delivery)

    deadline = time.monotonic() + 15  # the database-derived gauges refresh every 2 s
    while True:
        text = await (await client.get("/metrics")).text()
        if sample(text, "hindsight_open_incidents") == 1.0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    for name in DOCUMENTED:
        assert f"# HELP {name} " in text, name
    assert sample(text, 'hindsight_deliveries_total{outcome="understood",source="alertmanager"}'
                  ) == 1.0
    assert sample(text, "hindsight_append_seconds_count") == 1.0
    assert sample(text, "hindsight_group_commit_batch_size_count") == 1.0
    assert 'hindsight_request_seconds_count{route="/v1/webhooks/{source}",status="2xx"} 1.0' \
        in text
    assert sample(text, "hindsight_projector_leader") == 1.0
    assert sample(text, "hindsight_projector_lag_events") == 0.0
    assert sample(text, "hindsight_projector_lag_seconds") == 0.0
    assert sample(text, "hindsight_open_incidents") == 1.0
