"""Reconciliation tests run the whole engine (tests/dayend/world.py) in their own database: they close
accounting dates, which no other module may see move."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Servers
from tests.dayend.conftest import Db, db  # noqa: F401  (the module's own database)
from tests.dayend.world import World, running_world


@pytest.fixture(scope="module")
async def world(servers: Servers, db: Db) -> AsyncIterator[World]:  # noqa: F811
    async with running_world(db.url, servers.redis_url, db.pool) as w:
        yield w
