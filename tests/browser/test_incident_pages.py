"""The incident pages in a real headless Chromium (Debian's ``chromium``, driven by
Playwright), at a phone's width (390 px) and a desktop's (1280 px), through the real server
with its projector running.

The incidents come from recorded deliveries (tests/api/test_postmortem.py's scenarios:
each fixture is faithful to its tool's documentation): the checkout outage (a failed CI
run and three deploys, two alerts, an uptime check, a PagerDuty page acknowledged, and four
recorded action items), the missed nightly job, and an Alertmanager group re-sent after its
repeat_interval (a repeat, counted on its entry: TIMELINE.md rule 4). Screenshots of every
page at both widths go to artifacts/ (kept by CI).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from projections.drafts.formats import prose_time
from projections.runtime.projector import PROJECTOR
from tests.api.test_postmortem import (
    SERVICES,
    STATUS,
    checkout_outage,
    fixtures,
    import_deliveries,
    missed_cron_run,
)
from tests.browser.test_dashboard_page import CHROMIUM, ROOT
from tests.helpers import API_TOKEN, api_headers

SHOTS = ROOT / "artifacts" / "incident-pages"
WIDTHS = {"phone": 390, "desktop": 1280}

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")


class Tab:
    """One signed-in tab of a given width, collecting console errors."""

    def __init__(self, page: Any, base: str, width: int) -> None:
        self.page = page
        self.base = base
        self.width = width
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    async def open(self, path: str) -> Any:
        await self.page.goto(self.base + path)
        await self.page.wait_for_selector("body[data-state=ready]")
        return self.page

    async def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(SHOTS / f"{name}-{self.width}.png"), full_page=True)

    async def fits(self) -> None:
        """Nothing is wider than the window: no sideways scrolling of the page (a wide
        table scrolls inside its card, never the page)."""
        overflow = await self.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page is {overflow} px wider than {self.width} px"


async def open_tab(browser: Any, client: Any, width: int) -> Tab:
    context = await browser.new_context(viewport={"width": width, "height": 900})
    await context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = await context.new_page()
    tab = Tab(page, str(client.make_url("")).rstrip("/"), width)
    await page.goto(tab.base + "/incidents")
    await page.fill("#token", API_TOKEN)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("body[data-state=ready]")
    return tab


async def api_get(client: Any, path: str) -> Any:
    response = await client.get(path, headers=api_headers())
    assert response.status == 200, await response.text()
    return await response.json()


async def declare(client: Any, **body: Any) -> str:
    response = await client.post("/v1/incidents", json=body, headers=api_headers())
    assert response.status == 201, await response.text()
    answer = await response.json()
    assert await client.app[PROJECTOR].wait_for(answer["event"])
    return str(answer["incident"])


def utc(minutes_ago: int) -> str:
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes_ago)
    return moment.isoformat().replace("+00:00", "Z")


async def seeded(make_client: Any) -> tuple[Any, dict[str, str]]:
    client = await make_client(projector=True, services=SERVICES, status=STATUS)
    ids = {"checkout": await checkout_outage(client),
           "payments": await missed_cron_run(client),
           "storefront": await declare(client, service="storefront", severity="P2",
                                       title="Customers report failed logins",
                                       started_at=utc(45))}
    return client, ids


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
async def test_the_list_filters_by_status_service_severity_and_period(
        make_client: Any, browser: Any, width: int) -> None:
    client, ids = await seeded(make_client)
    tab = await open_tab(browser, client, width)

    async def listed() -> list[str]:
        rows = tab.page.locator("#incidents tbody tr[data-incident]")
        return sorted([await r.get_attribute("data-incident") for r in await rows.all()])

    # The default period is the last 30 days: the 2025 recordings are older.
    await tab.open("/incidents")
    assert await listed() == [ids["storefront"]]
    await tab.page.select_option("#f-period", "")  # all time
    await tab.page.wait_for_selector("body[data-state=ready]")
    assert await listed() == sorted(ids.values())
    assert await tab.page.inner_text("#count") == "3 incidents, 1 open"
    await tab.fits()
    await tab.shot("list")

    await tab.page.select_option("#f-status", "resolved")
    await tab.page.wait_for_selector("body[data-state=ready]")
    assert await listed() == sorted([ids["checkout"], ids["payments"]])
    await tab.page.select_option("#f-service", "payments")
    await tab.page.wait_for_selector("body[data-state=ready]")
    assert await listed() == [ids["payments"]]
    # The filters are in the address: a reload or a shared link shows the same list.
    await tab.page.reload()
    await tab.page.wait_for_selector("body[data-state=ready]")
    assert await listed() == [ids["payments"]]
    assert "service=payments" in tab.page.url

    await tab.open("/incidents?period=&severity=P2")
    assert await listed() == [ids["storefront"]]
    link = tab.page.locator(f'#incidents tr[data-incident="{ids["storefront"]}"] a')
    assert await link.inner_text() == "Customers report failed logins"
    await link.click()
    await tab.page.wait_for_selector("#timeline")
    assert tab.page.url.endswith(f"/incidents/{ids['storefront']}")
    assert tab.errors == []


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
async def test_an_incident_page_marks_the_four_moments_and_every_timeline_entry(
        make_client: Any, browser: Any, width: int) -> None:
    """The four moments as the API states them (TIMELINE.md: started, detected,
    acknowledged, resolved); every entry of the timeline, deploys marked."""
    client, ids = await seeded(make_client)
    incident = await api_get(client, f"/v1/incidents/{ids['checkout']}")
    tab = await open_tab(browser, client, width)
    page = await tab.open(f"/incidents/{ids['checkout']}")

    for moment in ("started", "detected", "acknowledged", "resolved"):
        time = page.locator(f'#moments [data-moment="{moment}"] time')
        assert await time.get_attribute("datetime") == incident[f"{moment}_at"]
        # To the nearest second, as the drafts' prose writes times (formats.prose_time).
        exact = datetime.fromisoformat(incident[f"{moment}_at"].replace("Z", "+00:00"))
        assert await time.inner_text() == prose_time(exact).replace("T", " ").replace(
            "Z", " UTC")
    assert "1 min 1 s after the start" in await page.inner_text('[data-moment="detected"]')
    assert "lasted 36 min 59 s" in await page.inner_text('[data-moment="resolved"]')

    entries = page.locator("#timeline > li")
    assert await entries.count() == len(incident["timeline"])
    markers = [await e.get_attribute("data-marker") for e in await entries.all()]
    expected = [e["marker"] or ("deploy" if e["kind"] == "deploy" else "")
                for e in incident["timeline"]]
    assert markers == expected
    assert markers.count("deploy") == 4  # the CI run and the three deployment statuses
    for moment in ("started", "detected", "acknowledged", "resolved"):
        assert markers.count(moment) == 1
    assert "4 deploys" in await page.inner_text("#tl-counts")
    assert await page.locator("#incident-items > li.item").count() == 4
    await tab.fits()
    await tab.shot("incident")
    assert tab.errors == []


async def test_repeated_reports_are_counted_on_their_entry(
        make_client: Any, browser: Any) -> None:
    """Alertmanager re-sends a firing group unchanged every repeat_interval: one entry,
    its repeats counted (TIMELINE.md rule 4)."""
    client = await make_client(projector=True, services=SERVICES)
    await import_deliveries(client, fixtures(["alertmanager/firing",
                                              "alertmanager/firing_repeat"]))
    [summary] = (await api_get(client, "/v1/incidents"))["incidents"]
    incident = await api_get(client, f"/v1/incidents/{summary['id']}")
    repeated = [e for e in incident["timeline"] if e["repeats"]]
    assert repeated  # the fixture's premise
    tab = await open_tab(browser, client, WIDTHS["desktop"])
    page = await tab.open(f"/incidents/{summary['id']}")
    shown = await page.locator("#timeline .repeats").all_inner_texts()
    assert len(shown) == len(repeated)
    assert f"repeated {repeated[0]['repeats']} time" in shown[0]
    last = datetime.fromisoformat(repeated[0]["last_repeat_at"].replace("Z", "+00:00"))
    assert prose_time(last)[11:19] in shown[0]
    assert "Resolved" in await page.inner_text("#moments")
    assert "not yet" in await page.inner_text('[data-moment="resolved"]')
    assert tab.errors == []


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
async def test_the_draft_reads_as_html_and_copies_and_downloads_as_markdown(
        make_client: Any, browser: Any, width: int, tmp_path: Path) -> None:
    client, ids = await seeded(make_client)
    draft = await api_get(client, f"/v1/incidents/{ids['checkout']}/postmortem?format=json")
    markdown = await (await client.get(f"/v1/incidents/{ids['checkout']}/postmortem",
                                       headers=api_headers())).text()
    tab = await open_tab(browser, client, width)
    page = await tab.open(f"/incidents/{ids['checkout']}/draft")

    headings = await page.locator("#draft section > h2").all_inner_texts()
    assert headings == [f"{s['number']}. {s['title']}" for s in draft["sections"]]
    [timeline] = [s for s in draft["sections"] if s["id"] == "timeline"]
    assert await page.locator("#s-timeline tbody tr").count() == len(timeline["rows"])
    [summary] = [s for s in draft["sections"] if s["id"] == "summary"]
    assert summary["sentences"][0] in await page.inner_text("#s-summary")
    [items] = [s for s in draft["sections"] if s["id"] == "action_items"]
    flags = [f for i in items["items"] for f in i["flags"]]
    assert await page.locator("#s-action_items .flags li").all_inner_texts() == flags

    await page.click("#copy-md")
    await page.wait_for_selector("#copy-status:has-text('Copied')")
    assert await page.evaluate("navigator.clipboard.readText()") == markdown
    async with page.expect_download() as info:
        await page.click("#download-md")
    download = await info.value
    assert download.suggested_filename == f"postmortem-{ids['checkout']}.md"
    await download.save_as(tmp_path / "draft.md")
    assert (tmp_path / "draft.md").read_text(encoding="utf-8") == markdown
    await tab.fits()
    await tab.shot("draft")
    assert tab.errors == []


async def test_text_from_the_api_is_shown_as_text_never_as_markup(
        make_client: Any, browser: Any) -> None:
    client = await make_client(projector=True)
    title = '<img src=x id=injected> & <b>bold</b>'
    incident = await declare(client, service="web", title=title,
                             summary="<script>document.title='x'</script>")
    tab = await open_tab(browser, client, WIDTHS["desktop"])
    for path in ("/incidents", f"/incidents/{incident}", f"/incidents/{incident}/draft"):
        page = await tab.open(path)
        assert title in await page.inner_text("main")
        assert await page.locator("#injected, main b").count() == 0
    assert tab.errors == []


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
async def test_declare_acknowledge_note_and_resolve_through_the_forms(
        make_client: Any, browser: Any, width: int) -> None:
    """A real round trip: each form POSTs to the API, the projector folds the event, and
    the page shows what the read model then holds."""
    client = await make_client(projector=True)
    tab = await open_tab(browser, client, width)
    page = await tab.open("/incidents/new")
    await tab.fits()
    await tab.shot("declare")
    await page.fill("#d-service", "storefront")
    await page.fill("#d-title", "Customers report failed logins")
    await page.select_option("#d-severity", "P2")
    started = utc(40)
    await page.fill("#d-started", started)
    await page.fill("#d-summary", "Support saw a spike of login complaints.")
    await page.click("#declare-form button[type=submit]")
    await page.wait_for_selector("#timeline")
    incident_id = page.url.rsplit("/", 1)[1]
    assert incident_id.startswith("inc_")
    assert await page.inner_text("#incident-title") == "Customers report failed logins"
    assert await page.get_attribute('[data-moment="started"] time', "datetime") == started

    # In the list, once the projector has folded it.
    await tab.open("/incidents")
    row = page.locator(f'#incidents tr[data-incident="{incident_id}"]')
    assert "open" in await row.inner_text()

    await tab.open(f"/incidents/{incident_id}")
    await tab.fits()
    await tab.shot("incident-forms")
    acked = utc(30)
    await page.fill("#ack-at", acked)
    await page.click("#ack-form button[type=submit]")
    await page.wait_for_selector(f'[data-moment="acknowledged"] time[datetime="{acked}"]')
    assert await page.locator("#ack-form").count() == 0  # acknowledged: no second time

    noted = utc(20)
    await page.fill("#note-at", noted)
    await page.fill("#note-text", "Rolled back the identity provider's config")
    await page.click("#note-form button[type=submit]")
    note = page.locator('#timeline li[data-marker="note"]')
    await note.wait_for()
    assert "Rolled back the identity provider's config" in await note.inner_text()
    assert await note.locator("time").get_attribute("datetime") == noted

    await page.fill("#item-title", "Alert on the login error rate")
    await page.fill("#item-owner", "identity team")
    await page.click("#item-form button[type=submit]")
    item = page.locator("#incident-items li.item")
    await item.wait_for()
    assert "Alert on the login error rate" in await item.inner_text()
    assert "owner: identity team" in await item.inner_text()

    resolved = utc(10)
    await page.fill("#resolve-at", resolved)
    await page.fill("#resolve-text", "Logins work again")
    await page.click("#resolve-form button[type=submit]")
    await page.wait_for_selector(f'[data-moment="resolved"] time[datetime="{resolved}"]')
    assert "lasted 30 min" in await page.inner_text('[data-moment="resolved"]')

    doc = await api_get(client, f"/v1/incidents/{incident_id}")
    assert (doc["status"], doc["acknowledged_at"], doc["resolved_at"]) == (
        "resolved", acked, resolved)
    await tab.open("/incidents?status=resolved")
    assert await page.locator(f'#incidents tr[data-incident="{incident_id}"]').count() == 1
    assert tab.errors == []


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
async def test_a_refusal_is_shown_next_to_the_field_it_names(
        make_client: Any, browser: Any, width: int) -> None:
    """A 422 names the field (docs/lifecycle.md: a resolution before the start is refused,
    as is a time in the future); the page puts the message beside that field."""
    client = await make_client(projector=True)
    incident = await declare(client, service="web", title="Slow pages", started_at=utc(30))
    tab = await open_tab(browser, client, width)
    page = await tab.open(f"/incidents/{incident}")
    await page.fill("#resolve-at", utc(60))
    await page.click("#resolve-form button[type=submit]")
    error = page.locator("#resolve-at-error")
    await error.wait_for()
    assert (await error.inner_text()).startswith("resolved_at: ")
    assert "before the incident started" in await error.inner_text()
    assert await page.get_attribute("#resolve-at", "aria-invalid") == "true"
    assert await page.evaluate("document.activeElement.id") == "resolve-at"

    future = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await page.fill("#note-at", future)
    await page.fill("#note-text", "From the future")
    await page.click("#note-form button[type=submit]")
    await page.locator("#note-at-error").wait_for()
    assert "in the future" in await page.inner_text("#note-at-error")

    # A time the API cannot read: its own validation names the field.
    await page.fill("#ack-at", "yesterday at noon")
    await page.click("#ack-form button[type=submit]")
    await page.locator("#ack-at-error").wait_for()
    assert (await page.inner_text("#ack-at-error")).startswith("at: ")
    await tab.fits()
    await tab.shot("field-error")
    # The browser notes each refused request (422) in its console; nothing else.
    assert all("422" in e for e in tab.errors)


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
async def test_action_items_and_the_weekly_review(
        make_client: Any, browser: Any, width: int) -> None:
    """The review (GET /v1/action-items/review) as the API answers it today: the checkout
    outage's items are due in March 2025, so both dated open ones are overdue; 'Improve
    monitoring' has no owner."""
    client, _ = await seeded(make_client)
    review = await api_get(client, "/v1/action-items/review")
    tab = await open_tab(browser, client, width)
    page = await tab.open("/action-items")
    for group in ("open", "overdue", "unassigned", "due_beyond_14_days"):
        value = page.locator(f'#review-tiles [data-group="{group}"] .value')
        assert await value.inner_text() == str(len(review[group]))
    assert len(review["overdue"]) == 2
    overdue = page.locator("#review-overdue li.item")
    assert [await i.get_attribute("data-item") for i in await overdue.all()] == [
        i["id"] for i in review["overdue"]]
    assert "Improve monitoring" in await page.inner_text("#review-unassigned")
    assert "vague" in await page.inner_text("#review-unassigned")
    assert await page.locator("#all-items li.item").count() == 3  # open ones by default
    await tab.fits()
    await tab.shot("action-items")

    first = review["overdue"][0]["id"]
    await page.click(f'#review-overdue [data-complete="{first}"]')
    # Once the projector has folded it, the review no longer lists it.
    await page.locator(f'#review-overdue [data-item="{first}"]').wait_for(state="detached")
    assert await page.inner_text('#review-tiles [data-group="overdue"] .value') == "1"
    await page.select_option("#i-status", "done")
    await page.wait_for_selector("body[data-state=ready]")
    done = await page.locator("#all-items li.item").all()
    assert first in [await i.get_attribute("data-item") for i in done]
    assert tab.errors == []


async def test_a_refused_token_asks_again(make_client: Any, browser: Any) -> None:
    client = await make_client()
    context = await browser.new_context(viewport={"width": 390, "height": 800})
    page = await context.new_page()
    await page.goto(str(client.make_url("/incidents")))
    await page.fill("#token", "not-the-token")
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#login-error:not([hidden])")
    assert "refused" in await page.inner_text("#login-error")
    assert await page.evaluate("sessionStorage.length") == 0


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
async def test_the_dashboard_fits_a_phone_and_links_the_incident_pages(
        make_client: Any, database_url: str, browser: Any, width: int) -> None:
    """Issue 13: at 390 px the dashboard's header overflowed and its tables left their
    cards. Nothing may be wider than the window, and every table stays inside its card
    (a wide one scrolls within it)."""
    from tests.browser.test_dashboard_page import seed

    await seed(database_url)
    client = await make_client()
    tab = await open_tab(browser, client, width)
    page = await tab.open("/dashboard")
    await tab.fits()
    escaped = await page.evaluate("""() => [...document.querySelectorAll('table')].filter((t) => {
        const card = t.closest('.card').getBoundingClientRect();
        const shown = t.parentElement.getBoundingClientRect();
        return shown.left < card.left || shown.right > card.right; }).map((t) => t.id)""")
    assert escaped == []
    await tab.shot("dashboard")
    await page.click("header a[href='/incidents']")
    await page.wait_for_selector("#incidents")
    assert tab.errors == []
