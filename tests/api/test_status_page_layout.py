"""The public status page's layout (issue 13, item 2): its title from ``[status] title``,
the state of each service ``[status.public_services]`` lists, the ongoing incidents
before the resolved ones (newest first), and one self-contained style sheet that the
page's Content-Security-Policy (``style-src 'self'``) allows. What is published is
unchanged (tests/api/test_status_page.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from projections.web.status_page import PublicIncident, page_order, status_html
from tests.api.test_postmortem import SERVICES, fixtures, import_deliveries
from tests.api.test_status_page import PUBLIC_SERVICES

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _incident(n: int, start_hours: int, resolved_hours: int | None,
              service: str | None = "Online Ordering") -> PublicIncident:
    return PublicIncident(
        id=f"inc_{n:016x}", title=f"incident {n}",
        status="open" if resolved_hours is None else "resolved",
        started_at=T0 + timedelta(hours=start_hours),
        resolved_at=None if resolved_hours is None else T0 + timedelta(hours=resolved_hours),
        summary="s", service=service)


def _ids_in_page(page: str) -> list[str]:
    return re.findall(r'<li class="incident [a-z]+" id="(inc_[0-9a-f]{16})"', page)


def test_ongoing_incidents_come_first_then_resolved_ones_newest_first() -> None:
    """A reader comes for what is happening now: an incident still open is listed before
    every resolved one, even one that started later."""
    old_open = _incident(1, 0, None)
    late_resolved = _incident(2, 10, 12)
    early_resolved = _incident(3, 2, 3)
    new_open = _incident(4, 5, None)
    # The query's order (latest start first) is not the page's.
    given = [late_resolved, new_open, early_resolved, old_open]
    assert page_order(given) == [new_open, old_open, late_resolved, early_resolved]
    page = status_html(given)
    assert _ids_in_page(page) == [i.id for i in (new_open, old_open, late_resolved,
                                                 early_resolved)]
    assert page.index("Ongoing incidents") < page.index("Recent incidents")


def test_the_title_is_escaped_and_each_listed_service_has_its_state() -> None:
    page = status_html([_incident(1, 0, None, "Product Pages"), _incident(2, 0, 1)],
                       title="Acme <status>", public_services=PUBLIC_SERVICES)
    assert "<title>Acme &lt;status&gt;</title>" in page
    assert "<h1>Acme &lt;status&gt;</h1>" in page
    states = dict(re.findall(
        r'<li class="service ([a-z]+)"><span class="name">([^<]+)</span>', page))
    # Disrupted: an open incident of the service; operational: only resolved ones.
    assert states == {"disrupted": "Product Pages", "operational": "Online Ordering"}


async def test_the_page_shows_the_configured_title_and_the_state_of_listed_services(
        make_client: Any) -> None:
    """A failing uptime check of the storefront (UptimeRobot ``down``, still open) makes
    its display name disrupted; checkout, with no incident, is operational; the title is
    the operator's."""
    client = await make_client(projector=True, services=SERVICES, status={
        "public_services": PUBLIC_SERVICES, "title": "  Acme   status "})
    await import_deliveries(client, fixtures(["uptimerobot/down"]))
    response = await client.get("/status")
    page = await response.text()
    assert "<title>Acme status</title>" in page
    assert re.search(r'class="service disrupted"><span class="name">Product Pages<', page)
    assert re.search(r'class="service operational"><span class="name">Online Ordering<',
                     page)
    assert "style-src 'self'" in response.headers["Content-Security-Policy"]


async def test_the_default_title_and_the_style_sheet_served_from_the_app(
        make_client: Any) -> None:
    client = await make_client()
    page = await (await client.get("/status")).text()
    assert "<title>Status</title>" in page
    # Nothing fetched from elsewhere: the only style sheet is ours, and no inline style.
    assert re.findall(r'rel="stylesheet" href="([^"]+)"', page) == ["/status/style.css"]
    assert "style=" not in page
    assert "<style" not in page
    assert "<script" not in page
    css = await client.get("/status/style.css")
    assert css.status == 200
    assert css.content_type == "text/css"
    assert "url(" not in await css.text()
    assert "@import" not in await css.text()
