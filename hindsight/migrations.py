"""Apply ``schema/NNNN_name.sql`` in order, once each, under an advisory lock.

1. Take a session advisory lock, so two processes starting at once apply each file once
   (the second waits, then finds everything applied).
2. Refuse to go on if an applied file was edited afterwards (its checksum changed):
   history would no longer match the database.
3. Apply each pending file in its own transaction and record it with its checksum.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from schema import DIRECTORY

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# An arbitrary constant, unique to Hindsight's migrations within the database.
MIGRATION_LOCK = 0x48_53_4D_47  # "HSMG"


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def discover(directory: Path = DIRECTORY) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), path.name, path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a number")
    return found


async def migrate(conn: asyncpg.Connection, directory: Path = DIRECTORY) -> list[str]:
    """Apply what is pending; returns the names applied now."""
    migrations = discover(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        applied = {
            row["version"]: row
            for row in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        }
        done: list[str] = []
        for migration in migrations:
            row = applied.get(migration.version)
            if row is not None:
                if row["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"{migration.name} was edited after it was applied "
                        f"(checksum {row['checksum'][:12]} in the database, "
                        f"{migration.checksum[:12]} on disk); add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version, migration.name, migration.checksum,
                )
            done.append(migration.name)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


async def pending(conn: asyncpg.Connection, directory: Path = DIRECTORY) -> list[str]:
    """Names of migrations not applied yet (for /readyz)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    applied: set[int] = set()
    if exists:
        applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    return [m.name for m in discover(directory) if m.version not in applied]
