"""A second running server on a database of its own, to compare two logs' answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import create_test_database, drop_test_database


@pytest.fixture
async def other_database_url(pg_admin_url: str, template_database: str) -> AsyncIterator[str]:
    url = await create_test_database(pg_admin_url, template_database)
    try:
        yield url
    finally:
        await drop_test_database(pg_admin_url, url)


@pytest.fixture
async def second_client(aiohttp_client: Any, other_database_url: str) -> Any:
    """Like ``make_client``, on ``other_database_url``."""
    from hindsight.app import create_app
    from tests.helpers import settings_for_tests

    async def make(projector: bool = False, **overrides: Any) -> Any:
        app = create_app(settings_for_tests(**overrides), database_url=other_database_url,
                         projector=projector)
        return await aiohttp_client(app)

    return make
