"""The incident pages, served by Hindsight itself beside the dashboard.

``/incidents`` (the list, filtered by status, service, severity and period),
``/incidents/new`` (declare), ``/incidents/{id}`` (the four moments, the timeline, and
the forms to note, acknowledge and resolve), ``/incidents/{id}/draft`` (the postmortem
draft as HTML, copied or downloaded as Markdown) and ``/action-items`` (every item and the
weekly review).

Like the dashboard (projections/web/dashboard.py): one static page, ``static/incidents/``, with
plain HTML, CSS and JavaScript, no build step and nothing fetched from elsewhere. The
pages themselves are public and hold no data; the script reads and writes the API
(``/v1/incidents``, ``/v1/action-items``) with the token the user enters once, kept in the
tab's ``sessionStorage`` under the dashboard's key, so one login serves both. Durations
are written by the dashboard's ``format.js`` (the rules of projections/drafts/formats.py), served
from ``/dashboard/assets``: one formatter for every page.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from projections.web.dashboard import SECURITY_HEADERS

STATIC = Path(__file__).resolve().parent / "static" / "incidents"
ASSETS = "/assets/incidents"

# The pages' paths. Each answers the same shell; the script reads location.pathname to
# know which page to draw, so every page has a real address (links, history, reloads).
PAGES = ("/incidents", "/incidents/new", "/incidents/{id}", "/incidents/{id}/draft",
         "/action-items")


async def incident_page(_: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)


def routes() -> list[web.AbstractRouteDef]:
    return [
        *(web.get(path, incident_page) for path in PAGES),
        # Outside /incidents/, so no incident id can be shadowed by the assets' folder.
        # A static route never follows symlinks out of the folder nor lists it.
        web.static(ASSETS, STATIC / "assets"),
    ]
