"""Migrations: in order, once each, under a lock, and refused when history was edited."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest

from hindsight.migrations import MigrationError, discover, migrate, pending
from schema import DIRECTORY
from tests.conftest import create_test_database, drop_test_database


@pytest.fixture
async def empty_database(pg_admin_url: str) -> str:  # type: ignore[misc]
    conn = await asyncpg.connect(pg_admin_url)
    try:
        await conn.execute("CREATE DATABASE hindsight_empty_tpl") if not await conn.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = 'hindsight_empty_tpl'") else None
    except asyncpg.DuplicateDatabaseError:
        pass
    finally:
        await conn.close()
    url = await create_test_database(pg_admin_url, "hindsight_empty_tpl")
    yield url  # type: ignore[misc]
    await drop_test_database(pg_admin_url, url)


async def test_two_processes_starting_at_once_apply_each_migration_once(
    empty_database: str,
) -> None:
    first = await asyncpg.connect(empty_database)
    second = await asyncpg.connect(empty_database)
    try:
        applied = await asyncio.gather(migrate(first), migrate(second))
        names = [m.name for m in discover()]
        assert sorted(applied, key=len) == [[], names]
        count = await first.fetchval("SELECT count(*) FROM schema_migrations")
        assert count == len(names)
        assert await pending(first) == []
    finally:
        await first.close()
        await second.close()


async def test_a_migration_edited_after_it_was_applied_is_refused(
    empty_database: str, tmp_path: Path
) -> None:
    copy = tmp_path / "schema"
    shutil.copytree(DIRECTORY, copy)
    conn = await asyncpg.connect(empty_database)
    try:
        await migrate(conn, copy)
        edited = copy / "0001_event_store.sql"
        edited.write_text(edited.read_text() + "\n-- an afterthought\n")
        with pytest.raises(MigrationError, match=r"0001_event_store\.sql was edited"):
            await migrate(conn, copy)
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_half_applied(
    empty_database: str, tmp_path: Path
) -> None:
    copy = tmp_path / "schema"
    shutil.copytree(DIRECTORY, copy)
    (copy / "0999_broken.sql").write_text("CREATE TABLE half (id int);\nSELECT 1/0;\n")
    conn = await asyncpg.connect(empty_database)
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await migrate(conn, copy)
        assert await conn.fetchval("SELECT to_regclass('half')") is None
        assert "0999_broken.sql" in await pending(conn, copy)
    finally:
        await conn.close()


def test_migration_files_must_be_numbered(tmp_path: Path) -> None:
    (tmp_path / "create_things.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        discover(tmp_path)
