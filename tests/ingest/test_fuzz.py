"""Arbitrary bytes and JSON to every source: never a 500, and every authentic delivery
is stored before it is answered."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.sources import SOURCES
from tests.helpers import live_body, signed_headers

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(orjson.dumps),
    st.dictionaries(st.sampled_from(["alerts", "status", "heartbeat", "monitor", "event",
                                     "object_kind", "deployment_status", "data", "kind",
                                     "state", "subject", "check", "name"]),
                    json_values, max_size=5).map(orjson.dumps),
)


def generated_cases(count: int = 30) -> list[tuple[bytes, bool]]:
    """Hypothesis draws the inputs (derandomized, so CI is repeatable); the server is then
    driven with each, since the running test already owns the event loop."""
    cases: list[tuple[bytes, bool]] = []

    @settings(max_examples=count, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(body=bodies, form=st.booleans())
    def draw(body: bytes, form: bool) -> None:
        cases.append((body, form))

    draw()
    return cases


CASES = generated_cases()


@pytest.mark.parametrize("source", SOURCES)
async def test_no_body_makes_a_source_answer_500(client: Any, database_url: str, source: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for body, form in CASES:
            content_type = "application/x-www-form-urlencoded" if form else "application/json"
            body = live_body(source, body, datetime.now(UTC))  # SNS: inside a signed message
            headers = signed_headers(source, body, {"Content-Type": content_type})
            response = await client.post(f"/v1/webhooks/{source}", data=body, headers=headers)
            assert response.status in {200, 202, 400, 415, 422}, await response.text()
            answer = await response.json()
            stored = await conn.fetchval("SELECT body FROM events WHERE position = $1",
                                         answer["delivery"])
            assert bytes(stored) == body
    finally:
        await conn.close()
