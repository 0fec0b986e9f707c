"""The /setup page in a real headless Chromium at 390 px and 1280 px: after the API token
is entered, one row per enabled source with its guide linked, nothing wider than the
window (the table scrolls inside its card), no console error. Screenshots go to
artifacts/setup-page/ (kept by CI)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.test_dashboard_page import CHROMIUM, ROOT
from tests.browser.test_status_page_browser import WIDTHS
from tests.helpers import API_TOKEN, settings_for_tests

SHOTS = ROOT / "artifacts" / "setup-page"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
async def test_the_setup_page_lists_each_enabled_source(
        make_client: Any, browser: Any, width: int) -> None:
    client = await make_client()
    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(str(client.make_url("/setup")))
    await page.wait_for_selector("body[data-state=login]")
    await page.fill("#token", API_TOKEN)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("body[data-state=ready]")
    rows = page.locator("#rows tr[data-source]")
    assert [await r.get_attribute("data-source") for r in await rows.all()] == list(
        settings_for_tests().sources)
    guide = page.locator('#rows tr[data-source="alertmanager"] a')
    assert await guide.get_attribute("href") == "/setup/guides/alertmanager.md"
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than {width} px"
    assert errors == []
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"setup-{width}.png"), full_page=True)
    await context.close()
