"""An aiohttp app served on 127.0.0.1 for the length of an ``async with`` block."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Served:
    port: int

    @property
    def url(self) -> str:
        """Base URL, no trailing slash."""
        return f"http://{HOST}:{self.port}"


@asynccontextmanager
async def serving(app: web.Application, *, sock: socket.socket | None = None) -> AsyncIterator[Served]:
    """Serve ``app`` on a free port of 127.0.0.1, or on ``sock`` when given (already bound there, for an
    app whose settings must name its own URL before it is built); shut it down on exit, error or not.

    No access log: nothing in the tests reads one.
    """
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, HOST, 0) if sock is None else web.SockSite(runner, sock)
        await site.start()
        host, port = runner.addresses[0][:2]
        assert host == HOST, f"serving on {host}, not {HOST}"
        yield Served(port)
    finally:
        await runner.cleanup()
