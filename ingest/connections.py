"""Connections to the event store as the service: which role, which timeouts. The store
client's own, so both sides (ingest, the projector and its rebuild shards) connect the
same way without importing the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

SERVICE_ROLE = "hindsight_service"
CONNECT_TIMEOUT = 1.5  # seconds: a webhook must get its 503 within 2 s when the store is down

# Server settings every connection of the service carries. A transaction left idle
# holds back the readers' horizon (see ingest/store.py), so it is ended for us.
SESSION_SETTINGS = {
    "application_name": "hindsight",
    "idle_in_transaction_session_timeout": "30000",
}


async def connect(url: str, **kwargs: Any) -> asyncpg.Connection:
    return await asyncpg.connect(url, timeout=CONNECT_TIMEOUT, **kwargs)


async def service_settings(url: str) -> dict[str, str]:
    """Session settings for the service's pool: run as ``hindsight_service`` (SELECT and
    INSERT only on the event log) whenever the migrations could grant it to us.

    The role goes in the startup packet, not a SET ROLE, so the pool's reset between
    uses (RESET ALL) returns to it rather than to the owner."""
    conn = await connect(url)
    try:
        member = await conn.fetchval(
            "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1) "
            "AND pg_has_role(current_user, $1, 'MEMBER')",
            SERVICE_ROLE,
        )
    finally:
        await conn.close()
    settings = dict(SESSION_SETTINGS)
    if member:
        settings["role"] = SERVICE_ROLE
    return settings


async def create_pool(url: str, *, min_size: int = 2, max_size: int = 10,
                      reset: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
                      ) -> asyncpg.Pool:
    """``reset``: asyncpg's hook run when a connection returns to the pool, instead of
    its default reset query (one more round trip per use)."""
    settings = await service_settings(url)
    pool: asyncpg.Pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=CONNECT_TIMEOUT,
        command_timeout=30,
        server_settings=settings,
        reset=reset,
    )
    return pool
