"""Typed application keys shared by the write and read sides (set by hindsight.app)."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from ingest.store import EventStore

POOL = web.AppKey("pool", asyncpg.Pool)
STORE = web.AppKey("store", EventStore)
