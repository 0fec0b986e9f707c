"""GET /metrics: every metric docs/operations.md lists, fed by real traffic."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from projections.runtime.projector import PROJECTOR
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


def deliveries(text: str, source: str, outcome: str) -> float:
    match = re.search(rf'^hindsight_deliveries_total\{{outcome="{re.escape(outcome)}",'
                      rf'source="{re.escape(source)}"\}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_refusals_before_the_body_is_read_are_counted(make_client: Any) -> None:
    """docs/operations.md and the metric's help: hindsight_deliveries_total counts
    too_large (413) and unknown_source (404) deliveries too. Unknown names are counted
    under source "unknown": a prober must not mint a label value per name it tries."""
    client = await make_client(max_body_bytes=2048)
    for name in ("nosuchtool", "probe-7b1e"):
        response = await client.post(f"/v1/webhooks/{name}", data=b"{}")
        assert response.status == 404
    response = await client.post("/v1/webhooks/alertmanager", data=b"x" * 4096,
                                  headers=signed_headers("alertmanager", b"x" * 4096))
    assert response.status == 413
    text = await (await client.get("/metrics")).text()
    assert deliveries(text, "unknown", "unknown_source") == 2.0
    assert deliveries(text, "alertmanager", "too_large") == 1.0
    assert "nosuchtool" not in text
    assert "probe-7b1e" not in text
