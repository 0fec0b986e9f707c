"""What the read side's HTTP face needs of the settings, handed over by the application
through typed keys (the rooms never import ``hindsight``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

# The status page's title when ``[status] title`` is not set.
DEFAULT_TITLE = "Status"


@dataclass(frozen=True)
class Publication:
    """``[status]``: what the public status page shows, and ``public_url``."""

    title: str = DEFAULT_TITLE
    # The service as incidents name it -> the name the public reads (opt-in).
    public_services: Mapping[str, str] = field(default_factory=dict)
    public_url: str | None = None


@dataclass(frozen=True)
class SourceDirectory:
    """The enabled sources as ``/setup`` and ``GET /v1/sources`` list them: ``rows`` on a
    connection (URL, authentication, guide, deliveries; never a secret) and ``guide``
    (a known source's guide file, else None)."""

    rows: Callable[[asyncpg.Connection], Awaitable[list[dict[str, Any]]]]
    guide: Callable[[str], Path | None]


PUBLICATION = web.AppKey("publication", Publication)
SOURCE_DIRECTORY = web.AppKey("source_directory", SourceDirectory)


def publication(app: web.Application) -> Publication:
    return app.get(PUBLICATION) or Publication()
