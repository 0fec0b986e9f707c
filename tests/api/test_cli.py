"""``hindsight import``, ``incidents``, ``incident``, ``deliveries`` and ``rebuild``
against a real database (``HINDSIGHT_DATABASE_URL``), through ``hindsight.cli.main``."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hindsight.cli import main
from tests.helpers import API_TOKEN, SECRETS, TOKENS
from tests.scenarios.payloads import Recorded, at, kuma

T0 = at("2025-03-14T10:00:00Z")


def s(seconds: float) -> Any:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    """A hindsight.toml with the test credentials, on the test database."""
    lines = [f'[api]\ntokens = ["{API_TOKEN}"]']
    for source in sorted({*TOKENS, *SECRETS}):
        lines.append(f'[sources.{source}]')
        if source in TOKENS:
            lines.append(f'token = "{TOKENS[source]}"')
        if source in SECRETS:
            lines.append(f'secret = "{SECRETS[source]}"')
    path = tmp_path / "hindsight.toml"
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("HINDSIGHT_DATABASE_URL", database_url)
    monkeypatch.setenv("HINDSIGHT_DATA_DIR", str(tmp_path / "data"))
    return path


async def hindsight(config: Path, *args: str) -> int:
    """Run the command as a user would (its own event loop, in a thread)."""
    return await asyncio.to_thread(main, ["--config", str(config), *args])


def flapping() -> list[Recorded]:
    """Down 10:00, up 10:03, down 10:10, up 10:14: one incident with the default
    15 min reopen window, two with a 5 min one."""
    return [kuma(False, s(0), s(0.5)), kuma(True, s(180), s(180.5)),
            kuma(False, s(600), s(600.5)), kuma(True, s(840), s(840.5))]


def unmappable() -> bytes:
    body = b'{"heartbeat": {"status": 9, "time": "2025-03-14 10:00:00.000"}, ' \
           b'"monitor": {"name": "Checkout API"}, "msg": "?"}'
    return Recorded("uptime-kuma", s(5), {"Content-Type": "application/json"}, body).line()


def write_log(tmp_path: Path) -> Path:
    path = tmp_path / "deliveries.jsonl"
    path.write_bytes(b"\n".join([*(d.line() for d in flapping()), unmappable(),
                                 b'{"source": "nope"}']) + b"\n")
    return path


async def incident_ids(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return [r["id"] for r in await conn.fetch(
            "SELECT id FROM incidents WHERE merged_into IS NULL ORDER BY started_at")]
    finally:
        await conn.close()


async def test_import_stores_and_projects_a_recorded_log(
    config: Path, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await hindsight(config, "import", str(write_log(tmp_path))) == 1  # line 6 refused
    out = capsys.readouterr().out
    assert "6 lines: 5 stored (1 of them not understood), 0 already stored, 1 refused" in out
    assert "line 6: 400 received_at: not an RFC 3339 time" in out
    assert "projected 5 events" in out
    assert len(await incident_ids(database_url)) == 1

    assert await hindsight(config, "import", str(write_log(tmp_path))) == 1
    assert "0 stored (0 of them not understood), 5 already stored" in capsys.readouterr().out


async def test_incidents_lists_them_in_a_table(
    config: Path, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await hindsight(config, "import", str(write_log(tmp_path)))
    [inc_id] = await incident_ids(database_url)
    capsys.readouterr()

    assert await hindsight(config, "incidents", "--status", "resolved") == 0
    out = capsys.readouterr().out
    assert out.startswith("1 incident (times UTC)\n")  # not "1 incidents"
    assert inc_id in out
    assert "2025-03-14T10:00:00Z" in out  # a table keeps the time exact
    assert "14 min" in out
    assert "14 min 0 s" not in out
    assert await hindsight(config, "incidents", "--status", "open") == 0
    assert inc_id not in capsys.readouterr().out
    assert await hindsight(config, "incidents", "--service", "payments") == 0
    assert "0 incidents" in capsys.readouterr().out


async def test_incidents_print_as_tsv_and_json_with_full_precision(
    config: Path, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await hindsight(config, "import", str(write_log(tmp_path)))
    [inc_id] = await incident_ids(database_url)
    capsys.readouterr()

    assert await hindsight(config, "incidents", "--format", "tsv") == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split("\t")[:4] == ["id", "service", "sev", "status"]
    assert row.split("\t")[0] == inc_id
    assert await hindsight(config, "incidents", "--format", "json") == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["id"] == inc_id
    assert record["detection_latency_seconds"] == 0.5
    assert record["started_at"] == "2025-03-14T10:00:00Z"


async def test_deliveries_and_latency_print_as_tsv_and_json(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await hindsight(config, "import", str(write_log(tmp_path)))
    capsys.readouterr()
    assert await hindsight(config, "deliveries", "--format", "json") == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 5
    assert {r["source"] for r in records} == {"uptime-kuma"}
    assert await hindsight(config, "deliveries", "--format", "tsv") == 0
    assert len(capsys.readouterr().out.splitlines()) == 6  # header and five rows
    assert await hindsight(config, "latency", "--group-by", "source", "--format", "json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["group"] == "uptime-kuma"
    assert rows[0]["p90_seconds"] == 0.5
    assert await hindsight(config, "latency", "--group-by", "source") == 0
    assert "uptime-kuma          1  1 s  1 s  1 s" in capsys.readouterr().out
    assert await hindsight(config, "review", "--format", "tsv", "--today", "2025-03-14") == 0
    assert capsys.readouterr().out.split("\t")[0] == "list"


async def test_incident_prints_the_timeline_with_its_markers(
    config: Path, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await hindsight(config, "import", str(write_log(tmp_path)))
    [inc_id] = await incident_ids(database_url)
    capsys.readouterr()

    assert await hindsight(config, "incident", inc_id) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("2025-03-14T10:")]
    markers = ("STARTED", "DETECTED", "ACKED", "RESOLVED")
    assert [next((m for m in markers if f"  {m}  " in row), "") for row in rows] == [
        "STARTED", "DETECTED", "", "", "RESOLVED"]
    assert "detection latency 1 s, duration 14 min" in out  # 0.5 s, halves up

    assert await hindsight(config, "incident", "inc_missing") == 1
    assert "no incident 'inc_missing'" in capsys.readouterr().err


async def test_deliveries_filters_by_source_and_outcome(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await hindsight(config, "import", str(write_log(tmp_path)))
    capsys.readouterr()

    assert await hindsight(config, "deliveries", "--outcome", "unmapped") == 0
    out = capsys.readouterr().out
    assert "1 delivery\n" in out
    assert "heartbeat.status: expected 0 to 3, got 9" in out
    assert await hindsight(config, "deliveries", "--source", "uptime-kuma") == 0
    assert "5 deliveries" in capsys.readouterr().out


async def test_rebuild_replays_the_log_and_reports_no_change(
    config: Path, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await hindsight(config, "import", str(write_log(tmp_path)))
    capsys.readouterr()

    assert await hindsight(config, "rebuild", "--diff") == 0
    out = capsys.readouterr().out
    assert "rebuilt from 5 events" in out
    assert "events/s" in out
    assert "no incident changed" in out


async def test_rebuild_diff_names_the_incidents_and_moments_a_setting_changed(
    config: Path, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    await hindsight(config, "import", str(write_log(tmp_path)))
    [before] = await incident_ids(database_url)
    capsys.readouterr()

    monkeypatch.setenv("HINDSIGHT_REOPEN_WINDOW_SECONDS", "300")
    assert await hindsight(config, "rebuild", "--diff") == 0
    out = capsys.readouterr().out
    first, second = await incident_ids(database_url)
    assert first == before
    assert "1 added, 0 removed, 1 changed" in out
    assert f"+ {second}" in out
    assert f"~ {before}" in out
    assert "resolved_at: 2025-03-14T10:14:00Z -> 2025-03-14T10:03:00Z" in out


async def test_rebuild_refuses_while_a_server_projects(
    config: Path, make_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.scenarios.harness import settle

    client = await make_client(projector=True)
    await settle(client)

    assert await hindsight(config, "rebuild") == 1
    assert "a projector is running against this database" in capsys.readouterr().err


# --- Output that reads well (issue 13, item 4) -------------------------------------------

def incident_table(width: int | None) -> str:
    from hindsight.cli_output import Column, render_table

    columns = (Column("id", keep=True), Column("service", drop=9), Column("sev", drop=5),
               Column("status", drop=8), Column("started", drop=7),
               Column("detected", drop=1), Column("resolved", drop=2),
               Column("latency", drop=6, right=True), Column("duration", drop=3, right=True),
               Column("verdict", drop=4), Column("title", wrap=True))
    cells = [[f"inc_f8100d{n:010x}", "checkout", "P1", "resolved",
              "2025-03-14T09:58:12.345678Z", "2025-03-14T09:59:13.021Z",
              "2025-03-14T10:35:10.95Z", "1 min 1 s", "36 min 59 s", "ok",
              "checkout: HighErrorRate on 10.42.3.17:8080 firing with a long explanation"]
             for n in range(3)]
    return render_table("3 incidents (times UTC)", columns, cells, width)


@pytest.mark.parametrize("width", [80, 120])
def test_a_table_never_cuts_an_id_and_fits_the_terminal(width: int) -> None:
    """Ids are copied into the next command (`hindsight draft ID`): never cut; other
    columns wrap or are left out instead, and the title says which."""
    text = incident_table(width)
    for n in range(3):
        assert f"inc_f8100d{n:010x}" in text
    assert "…" not in text
    assert all(len(line) <= width for line in text.splitlines()[1:]), text
    left_out = text.splitlines()[0].split("left out to fit: ")[1].split(";")[0].split(", ")
    assert "detected" in left_out
    assert "id" not in left_out
    assert "title" not in left_out
    assert "HighErrorRate" in text  # the title wraps, it is not dropped


def test_a_table_that_is_not_on_a_terminal_is_never_narrowed() -> None:
    text = incident_table(None)
    assert "left out" not in text
    assert "checkout: HighErrorRate on 10.42.3.17:8080 firing with a long explanation" in text


def _all_parsers() -> list[tuple[str, Any]]:
    import argparse

    from hindsight.cli import build_parser

    found = [("hindsight", build_parser())]
    index = 0
    while index < len(found):
        name, parser = found[index]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                found += [(f"{name} {sub}", p) for sub, p in action.choices.items()]
        index += 1
    return found


def test_every_command_and_option_has_help() -> None:
    import argparse

    missing = []
    for name, parser in _all_parsers():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{name} {c.dest}" for c in action._choices_actions if not c.help]
            elif not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def _help(*args: str) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit):
        main([*args, "--help"])
    return " ".join(buffer.getvalue().split())


def test_the_top_level_help_says_what_hindsight_is_and_where_settings_come_from() -> None:
    """settings.config_file: --config, else HINDSIGHT_CONFIG, else ./hindsight.toml, else
    the data directory's generated hindsight.toml."""
    text = _help()
    assert "The ``hindsight`` command." not in text
    assert "incident timelines" in text
    order = ["HINDSIGHT_CONFIG", "./hindsight.toml", "data directory"]
    assert [text.index(word) for word in order] == sorted(text.index(w) for w in order)


def test_rebuild_help_says_the_server_must_be_stopped() -> None:
    assert "The server must be stopped first" in _help("rebuild")


def test_draft_help_states_the_draft_date_default_as_build_draft_applies_it() -> None:
    """projections.drafts.draft.default_draft_date: the resolution date, else the start date."""
    text = _help("draft")
    assert "resolved, or, while it is open, the date it started" in text


def test_a_busy_port_is_one_friendly_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    monkeypatch.setenv("HINDSIGHT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert f"port {port} on 127.0.0.1 is already in use" in err
    assert "--port" in err
    assert "HINDSIGHT_PORT" in err
    assert not (tmp_path / "data").exists()  # nothing was started or generated


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_demo_finds_the_server_where_serve_listens_and_names_the_url_it_tried(
        config: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The same --port and HINDSIGHT_PORT as `serve` (settings.port), and the URL tried."""
    port = _free_port()
    assert main(["--config", str(config), "demo", "--port", str(port), "--wait", "0"]) == 1
    assert f"no Hindsight answered at http://127.0.0.1:{port}/readyz" in capsys.readouterr().err
    other = _free_port()
    monkeypatch.setenv("HINDSIGHT_PORT", str(other))
    assert main(["--config", str(config), "demo", "--wait", "0"]) == 1
    assert f"http://127.0.0.1:{other}/readyz" in capsys.readouterr().err


async def test_demo_names_the_url_that_answered_401(
        tmp_path: Path, make_client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    client = await make_client()
    path = tmp_path / "other.toml"
    path.write_text('[api]\ntokens = ["not-the-servers-token-0123456789abcdef"]\n')
    base = str(client.make_url("")).rstrip("/")
    code = await asyncio.to_thread(main, ["--config", str(path), "demo", "--url", base,
                                          "--wait", "5"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"{base}/v1/deliveries/import answered 401" in err
    assert str(path) in err
