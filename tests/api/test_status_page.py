"""The public status page: GET /status (HTML), GET /v1/status (JSON) and
GET /status/feed.atom (Atom 1.0), open without a token, with the public summary and the
times, and leaking nothing internal. Publication is opt-in (issue 12, item 6): the
incidents users saw of the services ``[status] public_services`` lists, each shown by its
display name, and incidents an engineer marks public; nothing else, and no service name
or subject an operator did not choose to show."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import orjson

from ingest.sources import SOURCES
from projections.runtime.projector import PROJECTOR
from projections.web.status_page import public_id
from tests.api.test_postmortem import (
    CHECKOUT_OUTAGE,
    MISSED_CRON_RUN,
    ORDERS_DB,
    SERVICES,
    fixtures,
    import_deliveries,
)
from tests.fixtures import Fixture
from tests.helpers import api_headers

ATOM = "{http://www.w3.org/2005/Atom}"
STOREFRONT = ("uptimerobot/down", "uptimerobot/up")
USED = (*CHECKOUT_OUTAGE, *MISSED_CRON_RUN, *ORDERS_DB, *STOREFRONT,
        "alertmanager/truncated", "alertmanager/non_utc_offset")

_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.IGNORECASE)
_HOST = re.compile(r"\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}\b", re.IGNORECASE)
_IP = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")


def _strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, key)
    elif isinstance(value, str):
        yield key, value


def _label_values(body: Any) -> Iterator[str]:
    """Values of Alertmanager/Grafana label sets and of Uptime Kuma tags."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key in ("labels", "commonLabels", "groupLabels") and isinstance(value, dict):
                yield from (str(v) for v in value.values())
            elif key == "tags" and isinstance(value, list):
                yield from (str(t.get("value")) for t in value
                            if isinstance(t, dict) and t.get("value"))
            else:
                yield from _label_values(value)
    elif isinstance(body, list):
        for value in body:
            yield from _label_values(value)


def internal_details(chosen: list[Fixture], services: Iterable[str] = ()) -> set[str]:
    """Every hostname, IP address, label value and URL in the fixtures' bodies, except the
    incidents' service names: the draft's public summary, which an engineer edits
    before posting, names them ("the checkout service") by design (``public_name``
    refuses one that looks internal); the status page's own rule on names is tested by
    ``test_no_internal_service_name_or_subject_reaches_the_public``."""
    found: set[str] = set()
    for fixture in chosen:
        try:
            body = orjson.loads(fixture.body)
        except orjson.JSONDecodeError:
            body = fixture.body.decode()
        for _, text in _strings(body):
            found.update(_URL.findall(text))
            found.update(_IP.findall(text))
            found.update(h for h in _HOST.findall(text) if not h.lower().endswith(".md"))
        found.update(_label_values(body))
    public = {s.lower() for s in services}
    return {f for f in found if f.strip() and f.lower() not in public}


# The services the operator chose to publish, and what the public calls them. Matched
# without regard to case: the uptime monitor names its service "Storefront".
PUBLIC_SERVICES = {"checkout": "Online Ordering", "storefront": "Product Pages"}
PAGES = ("/status", "/v1/status", "/status/feed.atom")


async def public_client(make_client: Any) -> Any:
    client = await make_client(projector=True, services=SERVICES,
                               status={"public_services": PUBLIC_SERVICES})
    await import_deliveries(client, fixtures(USED))
    return client


async def pages_of(client: Any) -> dict[str, str]:
    return {path: (await (await client.get(path)).read()).decode() for path in PAGES}


def _mentions(text: str, name: str) -> bool:
    """``name`` as a whole word (a subject "api" is not in "rapid"), in any case."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, re.IGNORECASE) is not None


async def test_the_status_json_lists_only_incidents_users_saw_of_listed_services(
        make_client: Any) -> None:
    client = await public_client(make_client)
    every = await (await client.get("/v1/incidents", headers=api_headers())).json()
    listed = {s.lower() for s in PUBLIC_SERVICES}
    public = {i["id"] for i in every["incidents"]
              if i["public"] and i["service"].lower() in listed}
    assert len(public) == 2  # checkout and the storefront
    # Users saw these too (P1: the blackbox probe, the payments cron job), but nobody
    # chose to publish their services: they stay off the page.
    unlisted = {i["id"] for i in every["incidents"] if i["public"]} - public
    assert len(unlisted) == 2
    response = await client.get("/v1/status")  # no token: it is public
    assert response.status == 200
    body = await response.json()
    ongoing = any(i["id"] in public and i["status"] == "open" for i in every["incidents"])
    assert body["status"] == ("disrupted" if ongoing else "operational")
    assert {i["id"] for i in body["incidents"]} == public
    for incident in body["incidents"]:
        assert set(incident) == {"id", "title", "status", "started_at", "resolved_at",
                                 "summary"}
    starts = [i["started_at"] for i in body["incidents"]]
    assert starts == sorted(starts, reverse=True)
    titles = sorted(i["title"] for i in body["incidents"])
    assert titles == ["Online Ordering was unavailable", "Product Pages was unavailable"]


async def test_no_internal_service_name_or_subject_reaches_the_public(
        make_client: Any) -> None:
    """Every subject, every unlisted service's name and a listed service's own name (when
    its display name differs) stay off the page, the JSON and the feed, including for an
    incident an engineer marks public."""
    client = await public_client(make_client)
    every = (await (await client.get("/v1/incidents", headers=api_headers())).json())[
        "incidents"]
    # An unlisted service's incident, marked public by an engineer: listed, anonymously.
    [payments] = [i for i in every if i["service"] == "payments"]
    answer = await client.post(f"/v1/incidents/{payments['id']}/events",
                               json={"type": "public", "public": True}, headers=api_headers())
    assert answer.status == 201, await answer.text()
    assert await client.app[PROJECTOR].wait_for((await answer.json())["event"])
    pages = await pages_of(client)
    shown = orjson.loads(pages["/v1/status"])["incidents"]
    assert payments["id"] in {i["id"] for i in shown}
    names = {s for i in every for s in i["subjects"]}
    names |= {i["service"] for i in every}
    assert {"payments", "payment-reconciliation", "Checkout API", "checkout", "Storefront",
            "alertname=ProbeFailure,job=blackbox-http"} <= names
    # "Product Pages" is the public name of the "Storefront" service: the words differ.
    leaks = sorted((path, name) for path, text in pages.items() for name in names
                   if _mentions(text, name))
    assert leaks == []
    for name in PUBLIC_SERVICES.values():
        assert all(name in text for text in pages.values())


async def test_incidents_of_unlisted_services_are_not_published_whatever_their_severity(
        make_client: Any) -> None:
    """Service names like "jenkins" and "vpn-gw" pass every internal-name heuristic; a P1
    of theirs is still not published unless the operator lists them."""
    client = await make_client(projector=True, status={"public_services": PUBLIC_SERVICES})
    for service in ("jenkins", "vpn-gw"):
        answer = await client.post("/v1/incidents", headers=api_headers(), json={
            "incident_id": f"inc_{service}", "service": service, "severity": "P1",
            "title": f"{service} down for everyone"})
        assert answer.status == 201, await answer.text()
        assert await client.app[PROJECTOR].wait_for((await answer.json())["event"])
    every = (await (await client.get("/v1/incidents", headers=api_headers())).json())[
        "incidents"]
    assert {i["id"] for i in every if i["public"]} == {"inc_jenkins", "inc_vpn-gw"}
    pages = await pages_of(client)
    assert orjson.loads(pages["/v1/status"]) == {"status": "operational", "incidents": []}
    for text in pages.values():
        assert not _mentions(text, "jenkins")
        assert not _mentions(text, "vpn-gw")
    # Marked public, it is listed, still without its name (nor its telling id).
    answer = await client.post("/v1/incidents/inc_vpn-gw/events", headers=api_headers(),
                               json={"type": "public", "public": True})
    assert answer.status == 201, await answer.text()
    assert await client.app[PROJECTOR].wait_for((await answer.json())["event"])
    pages = await pages_of(client)
    assert [i["title"] for i in orjson.loads(pages["/v1/status"])["incidents"]] == [
        "One of our services is disrupted"]
    for text in pages.values():
        assert not re.search("vpn|jenkins", text, re.IGNORECASE)


async def test_the_status_page_and_feed_need_no_token(make_client: Any) -> None:
    client = await make_client()
    page = await client.get("/status")
    assert page.status == 200
    assert page.content_type == "text/html"
    assert "All services are operating normally." in await page.text()
    feed = await client.get("/status/feed.atom")
    assert feed.status == 200
    assert feed.content_type == "application/atom+xml"


async def test_the_feed_is_valid_atom_with_an_entry_per_public_incident(
        make_client: Any) -> None:
    client = await public_client(make_client)
    listed = (await (await client.get("/v1/status")).json())["incidents"]
    raw = await (await client.get("/status/feed.atom")).read()
    root = ET.fromstring(raw)  # noqa: S314 (our own server's answer, in a test)
    # RFC 4287: atom:feed has exactly one id, title and updated, and an author (here at
    # feed level) unless every entry has one; every entry has one id, title and updated.
    assert root.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated"):
        assert len(root.findall(f"{ATOM}{name}")) == 1, name
    assert root.find(f"{ATOM}author/{ATOM}name") is not None
    assert root.find(f"{ATOM}link[@rel='self']") is not None
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == len(listed)
    for entry, incident in zip(entries, listed, strict=True):
        for name in ("id", "title", "updated"):
            assert len(entry.findall(f"{ATOM}{name}")) == 1, name
        assert entry.findtext(f"{ATOM}title") == incident["title"]
        assert entry.findtext(f"{ATOM}summary") == incident["summary"]
        assert incident["id"] in (entry.findtext(f"{ATOM}id") or "")
        updated = entry.findtext(f"{ATOM}updated") or ""
        assert datetime.fromisoformat(updated).tzinfo is not None  # RFC 3339, with a zone
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    assert len(set(ids)) == len(ids)


async def test_the_feed_and_page_are_the_same_bytes_for_the_same_log(make_client: Any) -> None:
    client = await public_client(make_client)
    for path in ("/status", "/v1/status", "/status/feed.atom"):
        first = await (await client.get(path)).read()
        assert await (await client.get(path)).read() == first, path


async def test_no_hostname_ip_label_value_or_url_from_the_payloads_reaches_the_public(
        make_client: Any) -> None:
    client = await public_client(make_client)
    every = await (await client.get("/v1/incidents", headers=api_headers())).json()
    secrets = internal_details(fixtures(USED), {i["service"] for i in every["incidents"]})
    # The list is what the test guards: it must hold each kind of detail.
    assert {"10.42.3.17", "pg-orders-1.db.example.com", "HighErrorRate"} <= secrets
    assert any(s.startswith("https://") for s in secrets)
    pages = {path: (await (await client.get(path)).read()).decode()
             for path in ("/status", "/v1/status", "/status/feed.atom")}
    summaries = [i["summary"] for i in orjson.loads(pages["/v1/status"])["incidents"]]
    for incident in every["incidents"]:
        doc = await (await client.get(f"/v1/incidents/{incident['id']}/postmortem?format=json",
                                      headers=api_headers())).json()
        [section] = [s for s in doc["sections"] if s["id"] == "public_summary"]
        summaries.append(section["text"])
    assert len(summaries) > len(every["incidents"])
    texts = {**pages, **{f"summary {n}": s for n, s in enumerate(summaries)}}
    leaks = sorted((where, secret) for where, text in texts.items() for secret in secrets
                   if secret.lower() in text.lower())
    assert leaks == []


async def test_an_open_public_incident_shows_as_a_disruption(make_client: Any) -> None:
    client = await make_client(projector=True, services=SERVICES,
                               status={"public_services": PUBLIC_SERVICES})
    await import_deliveries(client, fixtures(["uptimerobot/down"]))
    body = await (await client.get("/v1/status")).json()
    assert body["status"] == "disrupted"
    [incident] = body["incidents"]
    assert incident["status"] == "open"
    assert incident["resolved_at"] is None
    # Ongoing: in the present perfect, "... has been unavailable since <start>".
    assert " has been " in incident["summary"]
    assert " since " in incident["summary"]
    page = await (await client.get("/status")).text()
    assert "Some services are disrupted." in page


async def test_an_incident_an_engineer_marks_public_is_listed_and_unmarked_is_not(
        make_client: Any) -> None:
    """Marked public: listed even for an unlisted service, which is then not named;
    marked internal: not listed, even for a listed service."""
    client = await make_client(projector=True,
                               status={"public_services": {"search": "Search"}})

    async def send(path: str, body: dict[str, Any]) -> None:
        response = await client.post(path, json=body, headers=api_headers())
        assert response.status == 201, await response.text()
        assert await client.app[PROJECTOR].wait_for((await response.json())["event"])

    async def listed() -> list[str]:
        return [i["id"] for i in (await (await client.get("/v1/status")).json())["incidents"]]

    billing, search = public_id("inc_billing_1"), public_id("inc_search_1")
    # An id an engineer chose may tell what it is about: the public sees a hash of it.
    assert billing.startswith("inc_")
    assert "billing" not in billing

    await send("/v1/incidents", {"incident_id": "inc_billing_1", "service": "billing",
                                 "title": "Invoices <b>missing</b> for a customer",
                                 "severity": "P3"})
    assert await listed() == []
    await send("/v1/incidents/inc_billing_1/events", {"type": "public", "public": True})
    assert await listed() == [billing]
    page = await (await client.get("/status")).text()
    assert "Invoices" not in page  # the internal title is never shown
    assert "One of our services is disrupted" in page
    assert "billing" not in page.lower()  # nobody chose to name the service
    await send("/v1/incidents/inc_billing_1/events", {"type": "public", "public": False})
    assert await listed() == []
    await send("/v1/incidents", {"incident_id": "inc_search_1", "service": "search",
                                 "title": "Search down", "severity": "P1"})
    assert await listed() == [search]
    assert "Search is disrupted" in await (await client.get("/status")).text()
    await send("/v1/incidents/inc_search_1/events", {"type": "public", "public": False})
    assert await listed() == []


def test_the_leak_list_ignores_no_source_name_by_accident() -> None:
    """Source names are not secrets; a label value equal to one would make the leak test
    fail on the page's wording rather than on a leak."""
    assert not internal_details(fixtures(USED)) & set(SOURCES)
