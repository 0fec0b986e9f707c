"""The public status page: ``GET /status`` (HTML), ``GET /v1/status`` (JSON) and
``GET /status/feed.atom`` (Atom 1.0), open to anyone (API.md, "Public and operations").

Publication is opt-in (issue 12, item 6). They list, newest first:

- the incidents users saw (``incidents.public``: P1/P2 or a failing uptime check) of the
  services ``[status] public_services`` lists, unless an engineer marked one internal;
- any incident an engineer marked public (``incident.publicity_set``, ``"public"`` in
  the API), whatever its service.

Nothing else. A listed service is named by its configured display name, any other by
``one of our services``; its own name never appears. About each incident they say only
what ``projections.drafts.public`` allows: a generic title, the public summary and the times.
Nothing else of the incident (title, subjects, timeline, labels, links) is ever read into
a page, so nothing internal can leak through one; the three answers are built from one
list of ``PublicIncident`` values so they cannot drift.

The HTML page is titled by ``[status] title``, shows the state of each listed service
(by its display name: disrupted while one of its published incidents is open), then the
ongoing incidents and the resolved ones, newest first. It is styled by one small CSS file
(``/status/style.css``, ``static/status/``), nothing fetched from elsewhere, no script.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from feedgen.feed import FeedGenerator

from ingest.keys import POOL
from ingest.signals import format_time
from projections.drafts.public import display_name, public_summary, public_title
from projections.engine.codec import incident_from_json
from projections.engine.model import Incident
from projections.web.dashboard import SECURITY_HEADERS
from projections.web.keys import DEFAULT_TITLE, publication

# How many incidents the page and the feed show: users read the recent past.
LIMIT = 50
PAGE_TITLE = "Service status"
STYLE = Path(__file__).resolve().parent / "static" / "status" / "style.css"
# The feed's ``updated`` when no incident was ever public: a fixed instant, never the
# clock, so the same log always gives the same feed.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# ``public`` is true both for an incident users saw and for one an engineer marked public
# (and false for one marked internal); of those, a listed service's, or a marked one.
_QUERY = f"""
SELECT doc::text FROM incidents
WHERE public AND merged_into IS NULL
  AND (lower(service) = ANY($1::text[]) OR (doc->>'marked_public')::boolean IS TRUE)
ORDER BY started_at DESC, id
LIMIT {LIMIT}
"""


@dataclass(frozen=True, slots=True)
class PublicIncident:
    """What the public may know about one incident."""

    id: str  # opaque (``inc_`` + 16 hex digits, see ``public_id``): says nothing
    title: str
    status: str
    started_at: datetime
    resolved_at: datetime | None
    summary: str
    # The listed service's display name (already public), None for any other service.
    # Only the page's per-service state reads it; the JSON and the feed do not carry it.
    service: str | None = None

    @property
    def updated_at(self) -> datetime:
        return self.resolved_at or self.started_at

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "started_at": format_time(self.started_at),
            "resolved_at": None if self.resolved_at is None else format_time(self.resolved_at),
            "summary": self.summary,
        }


# The ids Hindsight makes itself: a hash of the opening signal, or a random declaration id.
_OPAQUE_ID = re.compile(r"inc_[0-9a-f]{16}")


def public_id(incident_id: str) -> str:
    """``incident_id`` when Hindsight made it (already opaque), else a hash of it: an
    engineer may declare an incident under a telling id ("inc_vpn-gw-down")."""
    if _OPAQUE_ID.fullmatch(incident_id):
        return incident_id
    return "inc_" + hashlib.sha256(f"public\x1f{incident_id}".encode()).hexdigest()[:16]


def public_incident(incident: Incident, public_services: Mapping[str, str]) -> PublicIncident:
    name = display_name(incident, public_services)
    return PublicIncident(
        id=public_id(incident.id),
        title=public_title(incident, name),
        status=incident.status,
        started_at=incident.started_at,
        resolved_at=incident.resolved_at,
        summary=public_summary(incident, name),
        service=_listed_name(incident.service, public_services),
    )


def _listed_name(service: str, public_services: Mapping[str, str]) -> str | None:
    """The display name ``[status.public_services]`` gives ``service`` (its keys are
    matched case-insensitively, as the query does), else None."""
    for key, display in public_services.items():
        if key.lower() == service.lower():
            return display
    return None


def _public_services(request: web.Request) -> Mapping[str, str]:
    return publication(request.app).public_services


def _page_title(request: web.Request) -> str:
    return publication(request.app).title


async def public_incidents(request: web.Request) -> list[PublicIncident]:
    services = _public_services(request)
    async with request.app[POOL].acquire() as conn:
        rows = await conn.fetch(_QUERY, sorted({s.lower() for s in services}))
    return [public_incident(incident_from_json(orjson.loads(r["doc"])), services)
            for r in rows]


def overall(incidents: Sequence[PublicIncident]) -> str:
    return "disrupted" if any(i.status == "open" for i in incidents) else "operational"


def _base_url(request: web.Request) -> str:
    """The configured ``public_url`` (how users reach us), else this request's own."""
    public_url = publication(request.app).public_url
    if public_url:
        return public_url.rstrip("/")
    return f"{request.scheme}://{request.host}"


def status_json(incidents: Sequence[PublicIncident]) -> dict[str, Any]:
    return {"status": overall(incidents), "incidents": [i.to_json() for i in incidents]}


def _when(incident: PublicIncident) -> str:
    start = incident.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if incident.resolved_at is None:
        return f"Since {start}"
    end = incident.resolved_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{start} to {end}"


def service_states(incidents: Sequence[PublicIncident],
                   public_services: Mapping[str, str]) -> list[tuple[str, str]]:
    """Each listed service's display name (once, in the configured order) with its state:
    ``disrupted`` while one of its published incidents is open, else ``operational``."""
    disrupted = {i.service for i in incidents if i.status == "open" and i.service}
    names = list(dict.fromkeys(public_services.values()))
    return [(name, "disrupted" if name in disrupted else "operational") for name in names]


def page_order(incidents: Sequence[PublicIncident]) -> list[PublicIncident]:
    """The ongoing incidents first (latest start first), then the resolved ones, the
    latest resolved first: what is happening now is what a reader came for."""
    ongoing = sorted((i for i in incidents if i.resolved_at is None),
                     key=lambda i: (i.started_at, i.id), reverse=True)
    resolved = sorted((i for i in incidents if i.resolved_at is not None),
                      key=lambda i: (i.resolved_at or i.started_at, i.started_at, i.id),
                      reverse=True)
    return ongoing + resolved


def _incident_item(incident: PublicIncident) -> str:
    ongoing = incident.resolved_at is None
    label = "Ongoing" if ongoing else "Resolved"
    started = html.escape(format_time(incident.started_at))
    return (
        f'<li class="incident {"ongoing" if ongoing else "resolved"}" '
        f'id="{html.escape(incident.id)}">\n'
        f"<h3>{html.escape(incident.title)}</h3>\n"
        f'<p class="when"><strong class="tag">{label}</strong> '
        f'<time datetime="{started}">{html.escape(_when(incident))}</time></p>\n'
        f"<p>{html.escape(incident.summary)}</p>\n"
        "</li>"
    )


def status_html(incidents: Sequence[PublicIncident], title: str = DEFAULT_TITLE,
                public_services: Mapping[str, str] | None = None) -> str:
    """A small page that reads without CSS or scripts; every value escaped."""
    state = overall(incidents)
    banner = ("Some services are disrupted." if state == "disrupted"
              else "All services are operating normally.")
    heading = html.escape(title)
    states = service_states(incidents, public_services or {})
    services = ""
    if states:
        rows = "\n".join(
            f'<li class="service {s}"><span class="name">{html.escape(name)}</span> '
            f'<span class="state">{"Disrupted" if s == "disrupted" else "Operational"}'
            "</span></li>" for name, s in states)
        services = f'<h2>Services</h2>\n<ul class="services">\n{rows}\n</ul>\n'
    ordered = page_order(incidents)
    ongoing = [_incident_item(i) for i in ordered if i.resolved_at is None]
    resolved = [_incident_item(i) for i in ordered if i.resolved_at is not None]
    listing = ""
    if ongoing:
        listing += ('<h2>Ongoing incidents</h2>\n<ul class="incidents">\n'
                    + "\n".join(ongoing) + "\n</ul>\n")
    listing += "<h2>Recent incidents</h2>\n" + (
        ('<ul class="incidents">\n' + "\n".join(resolved) + "\n</ul>\n") if resolved
        else "<p>No incidents to report.</p>\n")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{heading}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="/dashboard/assets/favicon.svg" type="image/svg+xml">\n'
        '<link rel="stylesheet" href="/status/style.css">\n'
        '<link rel="alternate" type="application/atom+xml" title="Incidents" '
        'href="/status/feed.atom">\n'
        "</head>\n<body>\n<main>\n"
        f"<h1>{heading}</h1>\n"
        f'<p class="overall {state}">{banner}</p>\n'
        f"{services}"
        f"{listing}"
        '<p class="feed"><a href="/status/feed.atom">Subscribe (Atom)</a></p>\n'
        "</main>\n</body>\n</html>\n"
    )


def status_feed(incidents: Sequence[PublicIncident], base_url: str) -> bytes:
    """Atom 1.0 (RFC 4287): one entry per incident, updated at its resolution (or start)."""
    feed = FeedGenerator()
    feed.id(f"{base_url}/status")
    feed.title(PAGE_TITLE)
    feed.author({"name": PAGE_TITLE})
    feed.link(href=f"{base_url}/status", rel="alternate", type="text/html")
    feed.link(href=f"{base_url}/status/feed.atom", rel="self", type="application/atom+xml")
    feed.updated(max((i.updated_at for i in incidents), default=EPOCH))
    # feedgen stamps a generator element with its own version: keep the feed ours alone.
    feed.generator("Hindsight")
    for incident in incidents:
        entry = feed.add_entry(order="append")
        entry.id(f"{base_url}/status#{incident.id}")
        entry.title(incident.title)
        entry.link(href=f"{base_url}/status#{incident.id}", rel="alternate", type="text/html")
        entry.published(incident.started_at)
        entry.updated(incident.updated_at)
        entry.summary(incident.summary)
    data: bytes = feed.atom_str(pretty=True)
    return data


async def get_status_json(request: web.Request) -> web.Response:
    incidents = await public_incidents(request)
    return web.Response(body=orjson.dumps(status_json(incidents)),
                        content_type="application/json")


async def get_status_page(request: web.Request) -> web.Response:
    incidents = await public_incidents(request)
    page = status_html(incidents, _page_title(request), _public_services(request))
    return web.Response(text=page, content_type="text/html", charset="utf-8",
                        headers=SECURITY_HEADERS)


async def get_status_style(_: web.Request) -> web.StreamResponse:
    return web.FileResponse(STYLE, headers=SECURITY_HEADERS)


async def get_status_feed(request: web.Request) -> web.Response:
    incidents = await public_incidents(request)
    return web.Response(body=status_feed(incidents, _base_url(request)),
                        content_type="application/atom+xml", charset="utf-8")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/status", get_status_page),
        web.get("/v1/status", get_status_json),
        web.get("/status/feed.atom", get_status_feed),
        web.get("/status/style.css", get_status_style),
    ]
