"""The /setup page and its API (issue 13, item 3): ``GET /v1/sources`` lists each enabled
source with its webhook URL, how it authenticates, its guide and what the delivery log
holds of it (as ``hindsight sources`` prints it), needs the API token and never answers
a secret; the guides (docs/sources/<source>.md) are served read-only, no other file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hindsight.settings import SIGNED_SOURCES
from ingest.sources import SOURCES
from projections.runtime.projector import PROJECTOR
from tests.fixtures import load_fixture
from tests.helpers import SECRETS, TOKENS, api_headers, settings_for_tests, signed_headers

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sources"


async def test_the_sources_need_the_api_token(make_client: Any) -> None:
    client = await make_client()
    assert (await client.get("/v1/sources")).status == 401


async def test_each_enabled_source_with_its_url_authentication_guide_and_no_secret(
        make_client: Any) -> None:
    client = await make_client()
    response = await client.get("/v1/sources", headers=api_headers())
    assert response.status == 200
    text = await response.text()
    rows = (await response.json())["sources"]
    settings = settings_for_tests()
    assert [r["source"] for r in rows] == list(settings.sources)
    for row in rows:
        assert row["webhook_url"] == settings.webhook_url(row["source"])
        assert row["guide"] == f"/setup/guides/{row['source']}.md"
        # A signed source is described as signed; a token source as a bearer token.
        if row["source"] in SIGNED_SOURCES:
            assert row["authentication"].startswith("signed"), row
        assert row["last_delivery_at"] is None
        assert row["deliveries"] == {}
    for secret in (*TOKENS.values(), *SECRETS.values()):
        assert secret not in text


async def test_the_counts_by_outcome_follow_the_delivery_log(make_client: Any) -> None:
    """The same delivery twice (a retry: ``duplicate``) and a body that is not JSON
    (``invalid``), as ``hindsight sources`` counts them (tests/hindsight/test_cli_secrets)."""
    client = await make_client(projector=True)
    firing = load_fixture("alertmanager", "firing")
    positions = []
    for body in (firing.body, firing.body, b"{not json"):
        response = await client.post(
            "/v1/webhooks/alertmanager", data=body,
            headers=signed_headers("alertmanager", body, {"Content-Type": "application/json"}))
        positions.append((await response.json())["delivery"])
    assert await client.app[PROJECTOR].wait_for(max(positions))
    rows = {r["source"]: r for r in
            (await (await client.get("/v1/sources", headers=api_headers())).json())["sources"]}
    assert rows["alertmanager"]["deliveries"] == {"understood": 1, "duplicate": 1,
                                                  "invalid": 1}
    assert rows["alertmanager"]["last_delivery_at"] is not None
    assert rows["cronitor"]["deliveries"] == {}


async def test_each_guide_is_served_as_markdown_and_nothing_else_is(make_client: Any) -> None:
    client = await make_client()
    for source in SOURCES:
        response = await client.get(f"/setup/guides/{source}.md")
        assert response.status == 200, source
        assert response.content_type == "text/markdown"
        assert await response.text() == (DOCS / f"{source}.md").read_text(encoding="utf-8")
    for path in ("/setup/guides/README.md", "/setup/guides/..%2F..%2FREADME.md",
                 "/setup/guides/../../pyproject.toml.md", "/setup/guides/nosuch.md"):
        assert (await client.get(path)).status == 404, path


async def test_the_setup_page_is_a_static_shell(make_client: Any) -> None:
    client = await make_client()
    page = await client.get("/setup")
    assert page.status == 200
    assert page.content_type == "text/html"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert (await client.get("/assets/setup/setup.js")).status == 200
