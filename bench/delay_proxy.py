"""A TCP proxy that holds every chunk for a fixed delay in each direction: a userspace stand-in for netem.

Used by the db-latency scenario when the kernel has no ``sch_netem`` (tc answers "Specified qdisc kind
is unknown"). It runs as its own process so its CPU does not share the benchmark's interpreter.

Timers must be finer than a millisecond, and epoll's timeout is in whole milliseconds, so the loop
uses the select() selector (microsecond timeouts; a few hundred sockets is far below its fd limit).
Order is kept per direction: chunks wait in a FIFO and one timer releases those that are due.

    python -m bench.delay_proxy --listen 127.0.0.1:0 --target-unix /tmp/.../.s.PGSQL.5432 --delay-ms 0.5
prints ``listening 127.0.0.1:PORT`` once ready and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import selectors
import signal
import sys
from collections import deque

EARLY_S = 20e-6  # release a chunk this close to its due time rather than arm another timer for it


class DelayedPipe(asyncio.Protocol):
    """One side of a proxied connection: data received here is written to ``peer`` after ``delay_s``."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.transport: asyncio.Transport | None = None
        self.peer: DelayedPipe | None = None
        self._queue: deque[tuple[float, bytes]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._queue.append((self._loop.time() + self.delay_s, data))
        if self._timer is None:
            self._timer = self._loop.call_at(self._queue[0][0], self._release)

    def _release(self) -> None:
        self._timer = None
        if self.peer is None or self.peer.transport is None:  # server side still connecting: hold on
            self._timer = self._loop.call_later(self.delay_s, self._release)
            return
        now = self._loop.time()
        while self._queue and self._queue[0][0] <= now + EARLY_S:
            _, data = self._queue.popleft()
            self.peer.transport.write(data)
        if self._queue:
            self._timer = self._loop.call_at(self._queue[0][0], self._release)
        elif self._closing and self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        # Deliver what is still in flight, then close the other side (a closed socket is delayed too).
        self._closing = True
        if not self._queue and self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


async def _serve(listen_host: str, listen_port: int, target_unix: str | None, target_host: str | None,
                 target_port: int, delay_s: float) -> None:
    loop = asyncio.get_running_loop()

    async def handle(client: DelayedPipe) -> None:
        try:
            if target_unix:
                _, server = await loop.create_unix_connection(lambda: DelayedPipe(delay_s), target_unix)
            else:
                assert target_host is not None
                _, server = await loop.create_connection(lambda: DelayedPipe(delay_s), target_host, target_port)
        except OSError:
            if client.transport is not None:
                client.transport.close()
            return
        client.peer, server.peer = server, client
        if client._closing and server.transport is not None:  # the client left while we connected
            server.transport.close()

    tasks: set[asyncio.Task[None]] = set()

    def accept() -> DelayedPipe:
        pipe = DelayedPipe(delay_s)
        task = loop.create_task(handle(pipe))  # chunks that arrive first wait in the pipe's queue
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return pipe

    server = await loop.create_server(accept, listen_host, listen_port, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"listening {listen_host}:{port}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.delay_proxy")
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--target-unix", default=None)
    p.add_argument("--target", default=None, help="host:port")
    p.add_argument("--delay-ms", type=float, default=0.5, help="delay in each direction")
    args = p.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)
    target_host, target_port = (args.target.rsplit(":", 1) if args.target else (None, "0"))
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    try:
        loop.run_until_complete(_serve(host, int(port), args.target_unix, target_host, int(target_port),
                                       args.delay_ms / 1000.0))
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
