"""The public status page: GET /status (HTML), GET /v1/status (JSON) and
GET /status/feed.atom (Atom 1.0), open without a token, listing only the incidents users
saw, with the public summary and the times, and leaking nothing internal."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import orjson

from ingest.sources import SOURCES
from projections.keys import PROJECTOR
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
    incidents' service names: those (configured, or a ``service`` label) are what users
    know a service by, and the public summary names them ("the checkout service") by
    design; ``public_name`` itself refuses one that looks internal (a host, a path)."""
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


async def public_client(make_client: Any) -> Any:
    client = await make_client(projector=True, services=SERVICES)
    await import_deliveries(client, fixtures(USED))
    return client


async def test_the_status_json_lists_only_incidents_users_saw_with_summary_and_times(
        make_client: Any) -> None:
    client = await public_client(make_client)
    every = await (await client.get("/v1/incidents", headers=api_headers())).json()
    public = {i["id"] for i in every["incidents"] if i["public"]}
    assert public
    assert public != {i["id"] for i in every["incidents"]}  # some are internal
    response = await client.get("/v1/status")  # no token: it is public
    assert response.status == 200
    body = await response.json()
    still_open = any(i["public"] and i["status"] == "open" for i in every["incidents"])
    assert still_open  # the blackbox probe never recovers in these deliveries
    assert body["status"] == "disrupted"
    assert {i["id"] for i in body["incidents"]} == public
    for incident in body["incidents"]:
        assert set(incident) == {"id", "title", "status", "started_at", "resolved_at",
                                 "summary"}
    starts = [i["started_at"] for i in body["incidents"]]
    assert starts == sorted(starts, reverse=True)


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
    client = await make_client(projector=True, services=SERVICES)
    await import_deliveries(client, fixtures(["uptimerobot/down"]))
    body = await (await client.get("/v1/status")).json()
    assert body["status"] == "disrupted"
    [incident] = body["incidents"]
    assert incident["status"] == "open"
    assert incident["resolved_at"] is None
    assert incident["summary"].startswith("Since ")
    page = await (await client.get("/status")).text()
    assert "Some services are disrupted." in page


async def test_an_incident_an_engineer_marks_public_is_listed_and_unmarked_is_not(
        make_client: Any) -> None:
    client = await make_client(projector=True)

    async def send(path: str, body: dict[str, Any]) -> None:
        response = await client.post(path, json=body, headers=api_headers())
        assert response.status == 201, await response.text()
        assert await client.app[PROJECTOR].wait_for((await response.json())["event"])

    async def listed() -> list[str]:
        return [i["id"] for i in (await (await client.get("/v1/status")).json())["incidents"]]

    await send("/v1/incidents", {"incident_id": "inc_billing_1", "service": "billing",
                                 "title": "Invoices <b>missing</b> for a customer",
                                 "severity": "P3"})
    assert await listed() == []
    await send("/v1/incidents/inc_billing_1/events", {"type": "public", "public": True})
    assert await listed() == ["inc_billing_1"]
    page = await (await client.get("/status")).text()
    assert "Invoices" not in page  # the internal title is never shown
    assert "the billing service" in page.lower()
    await send("/v1/incidents/inc_billing_1/events", {"type": "public", "public": False})
    assert await listed() == []


def test_the_leak_list_ignores_no_source_name_by_accident() -> None:
    """Source names are not secrets; a label value equal to one would make the leak test
    fail on the page's wording rather than on a leak."""
    assert not internal_details(fixtures(USED)) & set(SOURCES)
