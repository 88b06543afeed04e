"""Split tests run with synchronous posting, and with the hot-account buffer once it lands."""

from __future__ import annotations

import asyncpg
import pytest

from engine.booking import Booker

BOOKING_MODES = ["sync", "buffered"]


@pytest.fixture(params=BOOKING_MODES)
def booking_mode(request: pytest.FixtureRequest) -> str:
    mode: str = request.param
    if mode == "buffered":
        # The buffer (issue 3) plugs a HotLegSink into Booker and flushes hot subs; until it has
        # landed there is nothing to run this mode against.
        pytest.skip("hot-account buffer has not landed yet: no HotLegSink to book through")
    return mode


@pytest.fixture
def booker(pool: asyncpg.Pool) -> Booker:
    return Booker(pool)
