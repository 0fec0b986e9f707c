"""GET /dashboard: the page and its assets, served by Hindsight itself."""

from __future__ import annotations

import re
from typing import Any

from projections.web.dashboard import STATIC


async def test_the_page_is_served_without_a_token(make_client: Any) -> None:
    client = await make_client()
    response = await client.get("/dashboard")
    assert response.status == 200
    assert response.content_type == "text/html"
    text = await response.text()
    assert "/dashboard/assets/dashboard.js" in text
    assert "Detection latency" in text


async def test_the_page_runs_only_its_own_scripts(make_client: Any) -> None:
    client = await make_client()
    response = await client.get("/dashboard")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "<script>" not in await response.text()  # no inline script, as the policy demands


async def test_every_asset_the_page_names_is_served(make_client: Any) -> None:
    client = await make_client()
    page = await (await client.get("/dashboard")).text()
    assets = re.findall(r'(?:href|src)="(/dashboard/assets/[^"]+)"', page)
    assert len(assets) == 5  # favicon, stylesheet, signin.js, format.js, dashboard.js
    for path in assets:
        response = await client.get(path)
        assert response.status == 200, path


def test_no_asset_loads_anything_from_the_internet() -> None:
    for path in STATIC.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            urls = re.findall(r"https?://[^\s\"')]+", text)
            # the SVG namespace names a vocabulary; nothing is fetched from it
            assert [u for u in urls if not u.startswith("http://www.w3.org/")] == [], path


async def test_a_path_outside_the_assets_is_not_served(make_client: Any) -> None:
    client = await make_client()
    response = await client.get("/dashboard/assets/../../latency.py")
    assert response.status in {403, 404}
    assert (await client.get("/dashboard/assets/")).status in {403, 404}
