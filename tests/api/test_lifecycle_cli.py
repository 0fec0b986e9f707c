"""``hindsight declare | ack | note | severity | correct-start | resolve | merge | publish``
and ``hindsight action ...`` against a running server (issue 13, item 1), through
``hindsight.cli.main`` as a user runs them: the CLI finds the server as ``serve`` binds
it (HINDSIGHT_HOST, HINDSIGHT_PORT) and uses the first ``[api]`` token.

What the commands store is read back through the HTTP API, and checked against
TIMELINE.md: a declared incident is detected by a human at its declaration, the four
moments are the engineers' (rule 10, "The four moments"), the older id survives a merge.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hindsight.cli import build_parser, main
from hindsight.cli_lifecycle import server_url
from tests.helpers import API_TOKEN, api_headers, settings_for_tests
from tests.scenarios.harness import incident, incidents, settle

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[")
LIFECYCLE = ("declare", "ack", "note", "severity", "correct-start", "resolve", "merge",
             "publish", "action")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "hindsight.toml"
    path.write_text(f'[api]\ntokens = ["{API_TOKEN}"]\n')
    return path


@pytest.fixture
async def served(make_client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A server with its projector; the CLI pointed at it through the settings' host and
    port, as it would find `hindsight serve`."""
    client = await make_client(projector=True)
    monkeypatch.setenv("HINDSIGHT_HOST", "127.0.0.1")
    monkeypatch.setenv("HINDSIGHT_PORT", str(client.port))
    monkeypatch.delenv("HINDSIGHT_PUBLIC_URL", raising=False)
    return client


async def hindsight(config: Path, *args: str) -> int:
    """Run the command as a user would (its own event loop, in a thread)."""
    return await asyncio.to_thread(main, ["--config", str(config), *args])


def printed(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What the command printed: the server under test logs to the same stdout."""
    return [line for line in capsys.readouterr().out.splitlines()
            if not LOG_LINE.match(line)]


async def declare(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert await hindsight(config, "declare", *args) == 0, capsys.readouterr().err
    [incident_id] = printed(capsys)  # the id alone, for ID=$(hindsight declare ...)
    return incident_id


async def test_declare_ack_note_resolve_walks_an_incident_to_its_draft(
    served: Any, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's path: declared by a person, acknowledged, a key action noted,
    resolved; the moments are the ones given, and the draft has them."""
    inc = await declare(config, capsys, "--service", "storefront", "--title",
                        "Customers report failed logins", "--started-at",
                        "2025-03-20T09:00:00Z", "--severity", "P2")
    assert inc.startswith("inc_")
    assert await hindsight(config, "ack", inc, "--at", "2025-03-20T09:05:00Z") == 0
    assert await hindsight(config, "note", inc, "Rolled back the session store",
                           "--at", "2025-03-20T09:20:00+01:00") == 0
    assert await hindsight(config, "resolve", inc, "--at", "2025-03-20T09:40:00Z",
                           "--text", "sessions restored") == 0
    assert f"{inc}: resolved at 2025-03-20T09:40:00Z" in printed(capsys)
    await settle(served)

    doc = await incident(served, inc)
    assert (doc["service"], doc["title"], doc["severity"], doc["status"]) == (
        "storefront", "Customers report failed logins", "P2", "resolved")
    assert (doc["started_at"], doc["acknowledged_at"], doc["resolved_at"]) == (
        "2025-03-20T09:00:00Z", "2025-03-20T09:05:00Z", "2025-03-20T09:40:00Z")
    assert doc["detected_by"] == "human"  # TIMELINE.md: a declaration no monitor preceded
    assert doc["duration_seconds"] == 2400.0
    notes = [(e["at"], e["text"]) for e in doc["timeline"] if e["marker"] == "note"]
    assert notes == [("2025-03-20T08:20:00Z", "Rolled back the session store")]

    draft = await served.get(f"/v1/incidents/{inc}/postmortem", headers=api_headers())
    text = await draft.text()
    assert "Rolled back the session store" in text
    assert "2025-03-20" in text


async def test_times_default_to_now(served: Any, config: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    before = datetime.now(UTC)
    inc = await declare(config, capsys, "--service", "search", "--title", "Slow search")
    assert await hindsight(config, "ack", inc) == 0
    after = datetime.now(UTC)
    await settle(served)

    doc = await incident(served, inc)
    acknowledged = datetime.fromisoformat(doc["acknowledged_at"].replace("Z", "+00:00"))
    started = datetime.fromisoformat(doc["started_at"].replace("Z", "+00:00"))
    assert before <= started <= acknowledged <= after


async def test_severity_correct_start_publish_and_merge(
    served: Any, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rule 9: the engineer's severity wins; the corrected start is the start; rule 10:
    merging keeps the older id whichever is named first."""
    older = await declare(config, capsys, "--service", "checkout", "--title", "5xx",
                          "--started-at", "2025-03-20T10:00:00Z")
    newer = await declare(config, capsys, "--service", "payments", "--title", "timeouts",
                          "--started-at", "2025-03-20T10:10:00Z", "--id", "inc_payments-1")
    assert newer == "inc_payments-1"
    assert await hindsight(config, "severity", older, "P1", "--reason", "all checkouts") == 0
    assert await hindsight(config, "correct-start", older, "--at", "2025-03-20T09:52:00Z",
                           "--evidence", "first 5xx in the load balancer logs") == 0
    assert await hindsight(config, "publish", older) == 0
    assert await hindsight(config, "merge", newer, older) == 0
    await settle(served)

    [survivor] = await incidents(served)
    assert survivor["id"] == older
    assert (survivor["severity"], survivor["started_at"]) == ("P1", "2025-03-20T09:52:00Z")
    assert survivor["public"] is True
    assert (await incident(served, newer))["merged_into"] == older


async def test_action_items_are_added_assigned_dated_linked_and_done(
    served: Any, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inc = await declare(config, capsys, "--service", "accounts", "--title", "Login errors",
                        "--started-at", "2025-03-20T09:00:00Z")
    assert await hindsight(config, "action", "add", inc,
                           "Alert on the login error rate above 2% for 5 minutes") == 0
    [item] = printed(capsys)
    assert item.startswith("ai_")
    for args in (("assign", item, "identity team"), ("due", item, "2025-03-28"),
                 ("link", item, "https://tracker.example.com/ID-42"),
                 ("done", item, "--at", "2025-03-27T16:00:00Z")):
        assert await hindsight(config, "action", *args) == 0, capsys.readouterr().err
    await settle(served)

    answer = await served.get("/v1/action-items", params={"incident": inc},
                              headers=api_headers())
    [found] = (await answer.json())["action_items"]
    assert (found["id"], found["owner"], found["due_date"], found["ticket_url"],
            found["status"], found["completed_at"]) == (
        item, "identity team", "2025-03-28", "https://tracker.example.com/ID-42", "done",
        "2025-03-27T16:00:00Z")


async def test_a_contradiction_fails_naming_the_field(
    served: Any, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """TIMELINE.md: duration = resolved_at - started_at, so a resolution before the start
    cannot be true; the server refuses it (422) and the CLI says which field."""
    inc = await declare(config, capsys, "--service", "storefront", "--title", "Errors",
                        "--started-at", "2025-03-20T09:00:00Z")
    assert await hindsight(config, "resolve", inc, "--at", "2025-03-20T08:59:00Z") == 1
    err = capsys.readouterr().err
    assert err.startswith("hindsight: 422 resolved_at: 2025-03-20T08:59:00Z is before")
    assert await hindsight(config, "merge", inc, inc) == 1
    assert "422 other_id:" in capsys.readouterr().err
    assert await hindsight(config, "action", "done", "ai_missing") == 1
    assert "404 no action item 'ai_missing'" in capsys.readouterr().err


async def test_a_refused_token_names_the_url(
    served: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[api]\ntokens = ["not-the-servers-token-012345"]\n')
    assert await hindsight(wrong, "ack", "inc_x") == 1
    err = capsys.readouterr().err
    assert f"http://127.0.0.1:{served.port}" in err
    assert "401" in err


async def test_an_unreachable_server_is_one_line_naming_the_url_tried(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HINDSIGHT_HOST", "127.0.0.1")
    monkeypatch.setenv("HINDSIGHT_PORT", str(port))
    assert await hindsight(config, "resolve", "inc_x", "--at", "2025-03-20T09:40:00Z") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"no Hindsight answered at http://127.0.0.1:{port}" in err


def test_the_server_is_found_as_serve_binds_it() -> None:
    assert server_url(settings_for_tests(host="0.0.0.0", port=9000)) == (  # noqa: S104
        "http://127.0.0.1:9000")
    assert server_url(settings_for_tests(host="::", port=9000)) == "http://[::1]:9000"
    assert server_url(settings_for_tests(public_url="https://hs.example.com/")) == (
        "https://hs.example.com")
    assert server_url(settings_for_tests(), "http://other:1/") == "http://other:1"


def test_a_time_without_a_zone_is_refused_before_anything_is_sent(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config), "resolve", "inc_x", "--at", "2025-03-20T09:40:00"])
    assert exited.value.code == 2
    assert "has no zone" in capsys.readouterr().err


def test_every_lifecycle_command_and_option_has_help() -> None:
    """Issue 13 item 4: help text on every command and option."""
    sub = next(a for a in build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}

    def walk(name: str, parser: argparse.ArgumentParser) -> list[str]:
        missing = [f"{name} {a.dest}" for a in parser._actions
                   if not a.help and not isinstance(a, argparse._SubParsersAction)]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                verb_help = {c.dest: c.help for c in action._choices_actions}
                missing += [f"{name} {v}" for v in action.choices if not verb_help.get(v)]
                for verb, child in action.choices.items():
                    missing += walk(f"{name} {verb}", child)
        return missing

    missing = [c for c in LIFECYCLE if not helps.get(c)]
    for command in LIFECYCLE:
        missing += walk(command, sub.choices[command])
    assert missing == []
