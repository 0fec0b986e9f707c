"""The ``/setup`` page: each enabled source, its webhook URL, how it authenticates, its
guide and its last delivery and counts by outcome (issue 13, item 3), as ``hindsight
sources`` prints them, never a secret.

Like the incident pages (projections/web/incident_pages.py): one static shell,
``static/setup/``, no build step and nothing fetched from elsewhere; its script reads
``GET /v1/sources`` (API token, from the tab's ``sessionStorage``). The guides
(``docs/sources/<source>.md``) are served read-only at ``/setup/guides/<source>.md`` as
``text/markdown``: only a known source's name is looked up, so no request can name any
other file.
"""

from __future__ import annotations

from aiohttp import web

from ingest.keys import POOL
from projections.web.dashboard import SECURITY_HEADERS
from projections.web.incident_pages import STATIC as INCIDENTS_STATIC
from projections.web.keys import SOURCE_DIRECTORY

STATIC = INCIDENTS_STATIC.parent / "setup"
ASSETS = "/assets/setup"


async def setup_page(_: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)


async def get_guide(request: web.Request) -> web.Response:
    path = request.app[SOURCE_DIRECTORY].guide(request.match_info["source"])
    if path is None:
        raise web.HTTPNotFound(text="no such guide")
    return web.Response(text=path.read_text(encoding="utf-8"), content_type="text/markdown",
                        charset="utf-8", headers=SECURITY_HEADERS)


async def get_sources(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        rows = await request.app[SOURCE_DIRECTORY].rows(conn)
    return web.json_response({"sources": rows})


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/setup", setup_page),
        web.get(r"/setup/guides/{source:[a-z0-9_-]+}.md", get_guide),
        web.get("/v1/sources", get_sources),
        # A static route never follows symlinks out of the folder nor lists it.
        web.static(ASSETS, STATIC / "assets"),
    ]
