"""The pending period against a real Prometheus and Alertmanager (TIMELINE.md rule 8,
second paragraph): Debian's ``prometheus`` (2.42) and ``prometheus-alertmanager`` (0.25),
started here with their own config, ports and data in a temporary directory (.ci/run
installs them). Skipping is not passing: in CI (``CI=true``) missing binaries fail.

A target this test controls serves a gauge; a rule ``for: 3s`` fires when it reads 0;
Prometheus scrapes every second and evaluates every second; Alertmanager (group_wait
100 ms) posts to the real Hindsight server under test, which asks the same Prometheus
for the alert's pending period. The gauge flips to 0 at a recorded moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from ingest.prometheus_pending import EVENT_TYPE, PENDING_LOOKUP
from ingest.sources import alertmanager
from projections.runtime.projector import PROJECTOR
from tests.helpers import TOKENS, api_headers

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
FOR = timedelta(seconds=3)
SCRAPE = timedelta(seconds=1)
EVALUATION = timedelta(seconds=1)
# A scrape's own latency: a scrape is stamped when it starts, so one that started a few
# milliseconds before the flip may already read the flipped gauge.
SCRAPE_LATENCY = timedelta(milliseconds=250)
# Alertmanager keeps times to the millisecond (startsAt), Prometheus' activeAt finer.
MILLISECOND = timedelta(milliseconds=1)


@pytest.fixture(autouse=True)
def _tools() -> None:
    if PROMETHEUS and ALERTMANAGER:
        return
    message = ("prometheus and prometheus-alertmanager are needed "
               "(apt-get install -y prometheus prometheus-alertmanager; .ci/run does)")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        # The test's own argument list: binaries found by shutil.which, paths in tmp.
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def until(check: Callable[[], Any], *, within: float, what: str) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = await check()
        if found:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


class Target:
    """The monitored thing: ``/metrics`` with a gauge the test flips."""

    def __init__(self) -> None:
        self.healthy = 1
        app = web.Application()
        app.router.add_get("/metrics", self.metrics)
        self.server = TestServer(app, host="127.0.0.1")

    async def metrics(self, _: web.Request) -> web.Response:
        return web.Response(text=("# TYPE hindsight_test_healthy gauge\n"
                                  f"hindsight_test_healthy {self.healthy}\n"))


@contextlib.asynccontextmanager
async def target() -> AsyncIterator[Target]:
    t = Target()
    await t.server.start_server()
    try:
        yield t
    finally:
        await t.server.close()


def write_configs(tmp: Path, *, target_port: int, am_port: int, hindsight_url: str) -> None:
    (tmp / "rules.yml").write_text(f"""
groups:
  - name: hindsight-test
    interval: {EVALUATION.seconds}s
    rules:
      - alert: TargetUnhealthy
        expr: hindsight_test_healthy == 0
        for: {FOR.seconds}s
        labels:
          severity: critical
          service: checkout
        annotations:
          summary: the test target reports unhealthy
""")
    (tmp / "prometheus.yml").write_text(f"""
global:
  scrape_interval: {SCRAPE.seconds}s
  evaluation_interval: {EVALUATION.seconds}s
  external_labels:
    cluster: test-cluster
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{am_port}"]
rule_files: ["{tmp / 'rules.yml'}"]
scrape_configs:
  - job_name: target
    static_configs:
      - targets: ["127.0.0.1:{target_port}"]
""")
    (tmp / "alertmanager.yml").write_text(f"""
route:
  receiver: hindsight
  group_by: [alertname]
  group_wait: 100ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hindsight
    webhook_configs:
      - url: {hindsight_url}
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {TOKENS['alertmanager']}
""")


async def test_the_failure_starts_when_the_rules_condition_began_to_hold(
        make_client: Any, database_url: str, tmp_path: Path) -> None:
    prom_port, am_port = free_port(), free_port()
    prom_url = f"http://127.0.0.1:{prom_port}"
    client = await make_client(projector=True, sources={
        "alertmanager": {"token": TOKENS["alertmanager"], "prometheus_url": prom_url}})
    hindsight_url = str(client.server.make_url("/v1/webhooks/alertmanager"))
    async with target() as t:
        write_configs(tmp_path, target_port=t.server.port or 0, am_port=am_port,
                      hindsight_url=hindsight_url)
        with process([str(ALERTMANAGER), f"--config.file={tmp_path / 'alertmanager.yml'}",
                      f"--storage.path={tmp_path / 'am-data'}",
                      f"--web.listen-address=127.0.0.1:{am_port}",
                      "--cluster.listen-address="], tmp_path / "alertmanager.log"), \
             process([str(PROMETHEUS), f"--config.file={tmp_path / 'prometheus.yml'}",
                      f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                      f"--web.listen-address=127.0.0.1:{prom_port}"],
                     tmp_path / "prometheus.log"):
            http = ClientSession()

            async def healthy_seen() -> bool:
                with contextlib.suppress(Exception):
                    async with http.get(f"{prom_url}/api/v1/query",
                                        params={"query": "hindsight_test_healthy"}) as r:
                        result = (await r.json())["data"]["result"]
                        return bool(result) and result[0]["value"][1] == "1"
                return False

            try:
                await until(healthy_seen, within=20, what="Prometheus to scrape the target")
            finally:
                await http.close()
            await asyncio.sleep(1.5)  # the rule has evaluated the healthy target
            flipped = datetime.now(UTC)
            t.healthy = 0

            async def stored(kind: str) -> list[Any]:
                async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
                    return list(await pool.fetch(
                        "SELECT position, data::text AS data, body, received_at "
                        "FROM events WHERE type = $1 ORDER BY position", kind))

            deliveries = await until(lambda: stored("delivery.received"), within=20,
                                     what="Alertmanager's delivery")
            await asyncio.wait_for(client.app[PENDING_LOOKUP].drain(), 10)
            learned = await until(lambda: stored(EVENT_TYPE), within=10,
                                  what="the learned pending period")
            assert await client.app[PROJECTOR].wait_for(learned[-1]["position"])
            listing = await (await client.get("/v1/incidents?service=checkout",
                                              headers=api_headers())).json()

    [incident] = listing["incidents"]
    [firing] = [s for s in alertmanager.parse(_delivery(deliveries[0])) if s.state == "failing"]
    event = orjson.loads(learned[0]["data"])
    started = datetime.fromisoformat(incident["started_at"].replace("Z", "+00:00"))
    active_at = datetime.fromisoformat(event["active_at"].replace("Z", "+00:00"))

    # What Alertmanager said: startsAt, the moment the rule fired, at least its for
    # after the flip. Without prometheus_url the failure would start there.
    assert firing.occurred_at - flipped >= FOR - SCRAPE_LATENCY
    assert event["learned_from"] == "active_alert"
    assert event["for_seconds"] == FOR.total_seconds()
    # With it: the alert's activeAt, the first evaluation that saw the flipped gauge:
    # at most one scrape (the gauge is read at the next scrape) plus one evaluation
    # (the rule sees that sample at its next evaluation) after the flip.
    assert started == active_at
    assert flipped - SCRAPE_LATENCY <= started <= flipped + SCRAPE + EVALUATION
    assert firing.occurred_at - started >= FOR - MILLISECOND
    # Detection is still the notification's receipt: the pending period is latency.
    detected = datetime.fromisoformat(incident["detected_at"].replace("Z", "+00:00"))
    assert detected == deliveries[0]["received_at"]
    assert incident["detection_latency_seconds"] >= FOR.total_seconds()


def _delivery(row: Any) -> Any:
    from ingest.delivery import Delivery

    return Delivery(source="alertmanager", body=bytes(row["body"]),
                    received_at=row["received_at"])
