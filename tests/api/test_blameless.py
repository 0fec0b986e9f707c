"""Blameless by construction: no username, login or author name present in the fixtures
(GitHub senders and commit authors, GitLab users, PagerDuty agents, Better Stack
acknowledgers, …) appears in any draft built from them, and the draft frames what
happened as conditions of the system."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

from ingest.sources import SOURCES
from tests.api.test_postmortem import SERVICES, import_deliveries
from tests.fixtures import Fixture, all_fixtures
from tests.helpers import api_headers

# Objects that stand for a person in the payloads we accept.
_PERSON_KEYS = {"author", "committer", "pusher", "user", "creator", "actor", "triggering_actor",
                "sender", "agent", "assignee", "assignees", "acknowledger", "owner", "users"}
_NAME_KEYS = {"login", "username", "user_username", "user_name", "user_email", "email",
              "name", "display_name"}  # "summary" names a person only in a user_reference
_NOT_PEOPLE = {"automatically", *SOURCES}  # "resolved_by": "Automatically"; the "GitHub" bot
# Words that put the blame on someone rather than on the system.
_BLAME = re.compile(r"\b(mistake|human error|careless|negligen\w*|should have|at fault|"
                    r"blame[ds]?)\b", re.IGNORECASE)


def _people(value: Any, parent: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        is_org = value.get("type") == "Organization"
        is_user_ref = value.get("type") == "user_reference"
        for key, inner in value.items():
            if isinstance(inner, str):
                flat = key in ("user_username", "user_name", "user_email") or key.endswith("_by")
                referenced = is_user_ref and key == "summary"
                nested = not is_org and key in _NAME_KEYS and parent in _PERSON_KEYS
                if flat or referenced or nested:
                    yield inner
            else:
                yield from _people(inner, key)
    elif isinstance(value, list):
        for inner in value:
            yield from _people(inner, parent)


def people(chosen: list[Fixture]) -> set[str]:
    """Every name, login, username and e-mail address of a person in the bodies."""
    found: set[str] = set()
    for fixture in chosen:
        try:
            body = orjson.loads(fixture.body)
        except orjson.JSONDecodeError:
            continue
        found.update(p for p in _people(body) if p.strip())
    return {p for p in found if p.lower() not in _NOT_PEOPLE}


def test_the_list_of_people_holds_every_kind_of_person_in_the_fixtures() -> None:
    """The list is what the blame test guards: a payload change must not empty it."""
    found = people(all_fixtures())
    assert {"mkovacs-dev", "Mira Kovacs", "mira.kovacs@acme.example",  # GitHub
            "dpatel", "Deepa Patel",                                    # GitLab
            "Jordan Reyes", "Sam Okafor",                               # PagerDuty
            "Jordan Lee"} <= found                                      # Better Stack
    assert "acme" not in found  # the organisation, not a person


async def test_no_draft_built_from_the_fixtures_names_a_person(make_client: Any) -> None:
    client = await make_client(projector=True, services=SERVICES)
    chosen = all_fixtures()
    await import_deliveries(client, chosen, accept=(200, 202, 400, 422))
    listing = await (await client.get("/v1/incidents", headers=api_headers())).json()
    assert len(listing["incidents"]) >= 5
    names = people(chosen)
    drafts: dict[str, str] = {}
    for incident in listing["incidents"]:
        path = f"/v1/incidents/{incident['id']}/postmortem"
        drafts[f"{incident['id']}.md"] = await (await client.get(
            path, headers=api_headers())).text()
        drafts[f"{incident['id']}.json"] = await (await client.get(
            path + "?format=json", headers=api_headers())).text()
    named = sorted((where, name) for where, text in drafts.items() for name in names
                   if name.lower() in text.lower())
    assert named == []


async def test_every_draft_opens_with_the_blameless_frame_and_blames_no_one(
        make_client: Any) -> None:
    client = await make_client(projector=True, services=SERVICES)
    await import_deliveries(client, all_fixtures(), accept=(200, 202, 400, 422))
    listing = await (await client.get("/v1/incidents", headers=api_headers())).json()
    for incident in listing["incidents"]:
        text = await (await client.get(f"/v1/incidents/{incident['id']}/postmortem",
                                       headers=api_headers())).text()
        frame = text.split("## 1. Summary", 1)[0]
        assert "**Blameless review.**" in frame
        assert "the fix is in the system, not in people" in frame
        assert _BLAME.findall(text) == [], incident["id"]
