"""``GET /dashboard``: the detection-latency page, served by Hindsight itself.

The page and its assets live in ``projections/web/static/dashboard/`` (package data): plain
HTML, CSS and JavaScript with an inline SVG chart, no build step and nothing fetched from
elsewhere. The page itself is public; it reads ``/v1/detection-latency`` with the API
token the user enters once (kept in the tab's ``sessionStorage``), so no data is served
without the token.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static" / "dashboard"

# Only our own files run on the page: no inline script, nothing from another origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


async def dashboard_page(_: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/dashboard", dashboard_page),
        # A static route never follows symlinks out of the folder nor lists it.
        web.static("/dashboard/assets", STATIC / "assets"),
    ]
