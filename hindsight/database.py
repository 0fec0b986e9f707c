"""Which PostgreSQL: the configured one or the embedded one. How to connect to it as the
service is the store client's (``ingest/connections.py``), re-exported here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from hindsight.embedded import EmbeddedPostgres
from ingest.connections import (
    CONNECT_TIMEOUT,
    SERVICE_ROLE,
    SESSION_SETTINGS,
    connect,
    create_pool,
    service_settings,
)

__all__ = ["CONNECT_TIMEOUT", "SERVICE_ROLE", "SESSION_SETTINGS", "configured_database",
           "connect", "create_pool", "service_settings"]

if TYPE_CHECKING:
    from hindsight.settings import Settings


@asynccontextmanager
async def configured_database(settings: Settings) -> AsyncIterator[str]:
    """The URL of the configured database for a command-line tool: the one in
    ``HINDSIGHT_DATABASE_URL``, else the embedded server under the data directory,
    started (or joined, when ``serve`` runs) for the block and released after it."""
    if settings.database_url is not None:
        yield settings.database_url.get_secret_value()
        return
    embedded = EmbeddedPostgres(settings.data_dir.resolve() / "pgdata")
    url = await asyncio.to_thread(embedded.start)
    try:
        yield url
    finally:
        await asyncio.to_thread(embedded.stop)
