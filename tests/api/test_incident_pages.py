"""The incident pages (/incidents, /incidents/new, /incidents/{id}, /incidents/{id}/draft,
/action-items): served by Hindsight itself, as the dashboard is (tests/api/test_dashboard.py),
through the real server.

The contract: the pages hold no data and need no token (the script asks the API with the
token the user enters); only their own scripts run (CSP); nothing is fetched from another
origin; text from the API is never parsed as HTML (an incident's title is whatever a
monitoring tool or an engineer sent)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from projections.web.incident_pages import STATIC

PAGES = ["/incidents", "/incidents/new", "/incidents/inc_0123456789abcdef",
         "/incidents/inc_0123456789abcdef/draft", "/action-items"]


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_is_served_without_a_token(make_client: Any, path: str) -> None:
    client = await make_client()
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == "text/html"
    text = await response.text()
    assert "/assets/incidents/incidents.js" in text
    assert "API token" in text  # the sign-in form; no incident data is in the page


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_runs_only_its_own_scripts(make_client: Any, path: str) -> None:
    client = await make_client()
    response = await client.get(path)
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "default-src 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    text = await response.text()
    assert "<script>" not in text  # no inline script, as the policy demands
    assert "style=" not in text    # no inline style either (style-src 'self')


async def test_every_asset_the_pages_name_is_served(make_client: Any) -> None:
    """The duration formatter is the dashboard's format.js (one formatter, issue 13 item 4)
    and signing in is the dashboard's signin.js (one sign-in for every page)."""
    client = await make_client()
    page = await (await client.get("/incidents")).text()
    assets = re.findall(r'(?:href|src)="(/(?:assets|dashboard/assets)/[^"]+)"', page)
    assert "/dashboard/assets/format.js" in assets
    assert "/dashboard/assets/signin.js" in assets
    assert len(assets) == 5  # favicon, stylesheet, signin.js, format.js, incidents.js
    for path in assets:
        response = await client.get(path)
        assert response.status == 200, path


async def test_the_api_behind_the_pages_still_needs_the_token(make_client: Any) -> None:
    client = await make_client()
    assert (await client.get("/v1/incidents")).status == 401
    assert (await client.get("/v1/action-items/review")).status == 401


async def test_an_incident_named_like_the_assets_folder_is_still_a_page(make_client: Any) -> None:
    """Incident ids may be any of letters, digits and _ . : - (ingest.manual.IncidentId):
    the assets live outside /incidents/ so that no id is shadowed."""
    client = await make_client()
    response = await client.get("/incidents/assets")
    assert response.status == 200
    assert "/assets/incidents/incidents.js" in await response.text()


async def test_a_path_outside_the_assets_is_not_served(make_client: Any) -> None:
    client = await make_client()
    assert (await client.get("/assets/incidents/../../incident_pages.py")).status in {403, 404}
    assert (await client.get("/assets/incidents/")).status in {403, 404}


def test_no_asset_loads_anything_from_the_internet() -> None:
    for path in STATIC.rglob("*"):
        if path.is_file():
            urls = re.findall(r"https?://[^\s\"')]+", path.read_text(encoding="utf-8"))
            assert urls == [], path


def test_the_script_never_parses_text_as_html() -> None:
    """Titles, notes and drafts come from tools and people: they are set as text only."""
    script = (STATIC / "assets" / "incidents.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "DOMParser", "createContextualFragment"):
        assert sink not in script, sink
