"""GET /openapi.json: every route documented, and the live server keeps to it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from hindsight.app import create_app
from hindsight.openapi import document, undocumented
from tests.helpers import API_TOKEN
from tests.helpers import settings_for_tests as settings_for_tests

ROOT = Path(__file__).resolve().parents[2]
# Bounds the schemathesis run (about a minute on a 2-CPU runner).
MAX_EXAMPLES = 15
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance")


def test_every_route_the_app_registers_is_in_the_document() -> None:
    """A new route without an entry in hindsight/openapi.py fails here."""
    app = create_app(settings_for_tests(), database_url="postgresql://unused/unused")
    assert undocumented(app) == []


def test_the_document_lists_only_routes_the_app_serves() -> None:
    app = create_app(settings_for_tests(), database_url="postgresql://unused/unused")
    assert set(document(app)["paths"]) == set(document()["paths"])


async def test_the_document_is_served_without_a_token(client: Any) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    doc = await response.json()
    assert doc["openapi"].startswith("3.1")
    assert "/v1/webhooks/{source}" in doc["paths"]
    assert API_TOKEN not in await response.text()


def test_the_document_is_a_valid_openapi_schema() -> None:
    schemathesis = pytest.importorskip("schemathesis")
    schema = schemathesis.openapi.from_dict(document())
    assert len(list(schema.get_all_operations())) >= 20


@pytest.mark.slow
async def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(
    make_client: Any, tmp_path: Path
) -> None:
    """Generated requests (valid and invalid) with an API token against the running
    server: no 5xx but documented 503s, every status, content type and body as
    documented. One worker: CPython 3.11's parser is not safe across the threads
    schemathesis would use (SystemError: AST constructor recursion depth mismatch)."""
    pytest.importorskip("schemathesis")
    client = await make_client(projector=True)
    base = str(client.make_url("")).rstrip("/")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "schemathesis.cli", "run", f"{base}/openapi.json",
        "--checks", CHECKS, "--max-examples", str(MAX_EXAMPLES), "--seed", "7",
        "--header", f"Authorization: Bearer {API_TOKEN}", "--no-color",
        "--generation-database", "none", "--request-timeout", "10",
        "--phases", "examples,coverage,fuzzing", "--workers", "1",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 240)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    report = out.decode(errors="replace")
    assert proc.returncode == 0, report[-12000:]


def test_each_manual_event_and_action_item_body_is_described_field_by_field() -> None:
    """Issue 13 item 1: the bodies are generated from the models the handlers validate
    with, not ``object``: every manual event type but the declaration (its own route) and
    every action-item event a client may post has its schema, its required fields and
    its short name."""
    from ingest.action_items import ITEM_ALIASES
    from ingest.manual import EVENT_ALIASES, MANUAL_TYPES

    doc = document()
    schemas = doc["components"]["schemas"]
    route = doc["paths"]["/v1/incidents/{id}/events"]["post"]
    assert route["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EventBody"}
    mapping = schemas["EventBody"]["discriminator"]["mapping"]
    assert set(mapping) == {*MANUAL_TYPES, *EVENT_ALIASES} - {"incident.declared"}
    resolve = schemas[mapping["resolve"].rsplit("/", 1)[1]]
    assert resolve["required"] == ["type", "resolved_at"]
    assert resolve["properties"]["resolved_at"]["format"] == "date-time"
    assert resolve["additionalProperties"] is False
    declare = schemas["DeclareBody"]
    assert set(declare["required"]) == {"service", "title"}
    items = schemas["ItemEventBody"]["discriminator"]["mapping"]
    assert set(items) == {*ITEM_ALIASES, *ITEM_ALIASES.values()}
    assert schemas["AddItemBody"]["required"] == ["title"]
    review = doc["paths"]["/v1/action-items/review"]["get"]["responses"]["200"]
    assert review["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Review"}
