"""``hindsight import``, ``incidents``, ``incident``, ``deliveries`` and ``rebuild``
against a real database (``HINDSIGHT_DATABASE_URL``), through ``hindsight.cli.main``."""

from __future__ import annotations

import asyncio
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
    assert inc_id in out
    assert "2025-03-14 10:00:00" in out
    assert "14 min 0 s" in out
    assert await hindsight(config, "incidents", "--status", "open") == 0
    assert inc_id not in capsys.readouterr().out
    assert await hindsight(config, "incidents", "--service", "payments") == 0
    assert "0 incidents" in capsys.readouterr().out


async def test_incident_prints_the_timeline_with_its_markers(
    config: Path, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await hindsight(config, "import", str(write_log(tmp_path)))
    [inc_id] = await incident_ids(database_url)
    capsys.readouterr()

    assert await hindsight(config, "incident", inc_id) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "2025-03-14T10:" in line and "│" in line]
    assert [row.split("│")[2].strip() for row in rows] == [
        "STARTED", "DETECTED", "", "", "RESOLVED"]
    assert "detection latency 0.5 s, duration 14 min 0 s" in out

    assert await hindsight(config, "incident", "inc_missing") == 1
    assert "no incident 'inc_missing'" in capsys.readouterr().err


async def test_deliveries_filters_by_source_and_outcome(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await hindsight(config, "import", str(write_log(tmp_path)))
    capsys.readouterr()

    assert await hindsight(config, "deliveries", "--outcome", "unmapped") == 0
    out = capsys.readouterr().out
    assert "1 deliveries" in out
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
