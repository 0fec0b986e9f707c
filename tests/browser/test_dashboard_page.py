"""/dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

The seeded incidents sit in the two weeks before the current one, so the page's default
period (the last 12 weeks) shows them. Expected figures are computed by hand
(percentile_cont: position p·(n−1), interpolated):

- all 7: [30, 60, 120, 600, 900, 2400, 4000] s → p50 600 s = 10 min;
  p90 at 5.4 = 2400 + 0.4 × 1600 = 3040 s = 50 min 40 s; max 4000 s = 1 h 6 min 40 s;
  one P1 over 5 min (600 s); three over 30 min or found by a human (2400, 4000, F).
- two weeks ago: [60, 120, 600, 2400] → p50 360 s, p90 at 2.7 = 600 + 0.7 × 1800 = 1860 s.
- last week: [30, 900, 4000] → p50 900 s, p90 at 1.8 = 900 + 0.8 × 3100 = 3380 s.
- checkout [30, 60, 120] → p50 1 min, p90 at 1.8 = 60 + 0.8 × 60 = 108 s = 1 min 48 s.
- billing [900, 4000] → p50 2450 s = 40 min 50 s, p90 at 0.9 = 900 + 0.9 × 3100 = 3690 s
  = 1 h 1 min 30 s (durations as everywhere: projections/drafts/formats.py, format.js).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from tests.helpers import API_TOKEN

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")


def monday(weeks_ago: int) -> datetime:
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=today.weekday(), weeks=weeks_ago)


# id, service, severity, (weeks ago, day offset), latency, detected_by, source
SEEDED = [
    ("inc-a", "checkout", "P1", (2, 1), 60, "monitor", "alertmanager"),
    ("inc-b", "checkout", "P2", (2, 2), 120, "monitor", "uptime-kuma"),
    ("inc-c", "search", "P1", (2, 3), 600, "monitor", "alertmanager"),
    ("inc-d", "search", "P3", (2, 4), 2400, "monitor", "healthchecks"),
    ("inc-e", "checkout", "P1", (1, 0), 30, "monitor", "grafana"),
    ("inc-f", "billing", "P2", (1, 2), 900, "human", None),
    ("inc-g", "billing", "P3", (1, 4), 4000, "monitor", "uptimerobot"),
]


async def seed(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for inc_id, service, severity, (weeks, day), latency, by, source in SEEDED:
            started = monday(weeks) + timedelta(days=day, hours=10)
            doc = orjson.dumps({"id": inc_id, "title": f"{service} incident {inc_id}",
                                "kinds": ["alert"]}).decode()
            await conn.execute(
                """INSERT INTO incidents (id, service, title, severity, status, started_at,
                       detected_at, detection_latency_seconds, detected_by, detection_verdict,
                       first_detector_source, summary, doc)
                   VALUES ($1, $2, $3, $4, 'resolved', $5, $6, $7, $8, 'ok', $9, $10::json,
                           $10::jsonb)""",
                inc_id, service, f"{service} incident {inc_id}", severity, started,
                started + timedelta(seconds=latency), latency, by, source, doc)
    finally:
        await conn.close()


async def open_page(browser: Any, url: str) -> tuple[Any, list[str]]:
    page = await browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(url)
    return page, errors


async def sign_in(page: Any, token: str) -> None:
    await page.fill("#token", token)
    await page.click("#login-form button[type=submit]")


async def cells(page: Any, table: str, group: str) -> list[str]:
    texts: list[str] = await page.locator(
        f'#{table} tr[data-group="{group}"] td').all_inner_texts()
    return texts


async def test_the_dashboard_shows_the_seeded_figures_after_the_token_is_entered(
        make_client: Any, database_url: str, browser: Any) -> None:
    await seed(database_url)
    client = await make_client()
    page, errors = await open_page(browser, str(client.make_url("/dashboard")))
    assert await page.is_visible("#login")
    await sign_in(page, API_TOKEN)
    await page.wait_for_selector("body[data-state=ready]")

    assert await page.inner_text("#t-incidents") == "7"
    assert await page.inner_text("#t-p50") == "10 min"
    assert await page.inner_text("#t-p90") == "50 min 40 s"
    assert await page.inner_text("#t-max") == "1 h 6 min 40 s"
    assert await page.inner_text("#t-p1") == "1"
    assert await page.inner_text("#t-30") == "3"

    # The chart: one p50 and one p90 point per week with incidents, and both rules.
    points = page.locator("#chart circle")
    assert await points.count() == 4
    drawn = {(await p.get_attribute("data-week"), await p.get_attribute("data-series"),
              round(float(await p.get_attribute("data-seconds") or "nan"), 6))
             for p in await points.all()}
    two_ago, last = monday(2).date().isoformat(), monday(1).date().isoformat()
    assert drawn == {(two_ago, "p50", 360.0), (two_ago, "p90", 1860.0),
                     (last, "p50", 900.0), (last, "p90", 3380.0)}
    assert await page.locator("#chart .rule-warn").count() == 1
    assert await page.locator("#chart .rule-bad").count() == 1
    assert "30 min: critical" in await page.inner_text("#chart")

    checkout = await cells(page, "by-service", "checkout")
    assert checkout[:4] == ["checkout", "3", "1 min", "1 min 48 s"]
    billing = await cells(page, "by-service", "billing")
    assert billing[:4] == ["billing", "2", "40 min 50 s", "1 h 1 min 30 s"]
    human = await cells(page, "by-source", "human")
    assert human[:4] == ["human", "1", "15 min", "15 min"]
    first_row = page.locator("#worst tbody tr").first
    assert await first_row.get_attribute("data-incident") == "inc-g"
    link = first_row.locator("a")
    assert await link.get_attribute("href") == "/v1/incidents/inc-g/postmortem"

    (ROOT / "artifacts").mkdir(exist_ok=True)
    await page.screenshot(path=str(ROOT / "artifacts" / "dashboard.png"), full_page=True)
    assert errors == []


async def test_the_token_is_kept_for_the_tab_and_can_be_forgotten(
        make_client: Any, database_url: str, browser: Any) -> None:
    await seed(database_url)
    client = await make_client()
    page, errors = await open_page(browser, str(client.make_url("/dashboard")))
    await sign_in(page, API_TOKEN)
    await page.wait_for_selector("body[data-state=ready]")
    await page.reload()
    await page.wait_for_selector("body[data-state=ready]")
    assert not await page.is_visible("#login")
    await page.click("#signout")
    assert await page.is_visible("#login")
    assert await page.evaluate("sessionStorage.length") == 0
    assert errors == []


async def test_a_refused_token_asks_again(make_client: Any, browser: Any) -> None:
    client = await make_client()
    page, errors = await open_page(browser, str(client.make_url("/dashboard")))
    await sign_in(page, "not-the-token")
    await page.wait_for_selector("#login-error:not([hidden])")
    assert "refused" in await page.inner_text("#login-error")
    # The only console message is the browser's own note of the 401 answer.
    assert all("401" in e for e in errors)


async def test_an_empty_history_says_so(make_client: Any, browser: Any) -> None:
    client = await make_client()
    page, errors = await open_page(browser, str(client.make_url("/dashboard")))
    await sign_in(page, API_TOKEN)
    await page.wait_for_selector("body[data-state=ready]")
    assert "No detected incidents" in await page.inner_text("#chart")
    assert await page.inner_text("#t-incidents") == "0"
    assert errors == []
