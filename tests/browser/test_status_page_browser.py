"""The public status page in a real headless Chromium at a phone's width (390 px) and a
desktop's (1280 px): styled by its own sheet (not the browser's default serif), nothing
wider than the window, no console error (a style the Content-Security-Policy refused
would log one). Screenshots go to artifacts/status-page/ (kept by CI)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_postmortem import SERVICES, fixtures, import_deliveries
from tests.api.test_status_page import PUBLIC_SERVICES, USED
from tests.browser.test_dashboard_page import CHROMIUM, ROOT

SHOTS = ROOT / "artifacts" / "status-page"
WIDTHS = {"phone": 390, "desktop": 1280}

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
async def test_the_status_page_is_styled_and_fits_the_window(
        make_client: Any, browser: Any, width: int) -> None:
    client = await make_client(projector=True, services=SERVICES, status={
        "public_services": PUBLIC_SERVICES, "title": "Acme status"})
    await import_deliveries(client, fixtures([*USED, "uptimerobot/down"]))
    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(str(client.make_url("/status")))
    assert await page.title() == "Acme status"
    font = await page.evaluate("getComputedStyle(document.body).fontFamily")
    assert "serif" not in font.replace("sans-serif", "")
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than {width} px"
    assert await page.locator(".service").count() == len(set(PUBLIC_SERVICES.values()))
    assert errors == []
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"status-{width}.png"), full_page=True)
    await context.close()
