"""In-process flushers on a thread of their own, with their own event loop and connections.

Opt-in (PAYENGINE_BUFFER_FLUSHER_THREAD=1; ``python -m bench ... --flushers thread``). On the
request-serving event loop every step of a flush round (take, apply, ack) waits behind whatever
else is ready to run. A thread does not add CPU (the GIL is shared), but Python hands the GIL over
every few milliseconds, so a flusher whose answer has arrived runs within one switch interval. It is
a trade, measured side by side in docs/SCALING.md: on loopback it lowered flush lag p99 (a 16-way
split's from ~0.55-0.73 s to ~0.27-0.37 s) at about the same payments/s; at a 1 ms database it did
not lower lag and cost 7-12% of payments/s, its wake-ups taking the GIL from the request loop.

The thread builds everything it touches inside its own loop (asyncpg pool and connections, the
Redis client from ``make_redis``): neither asyncpg nor redis-py objects may cross event loops.
Stopping sets the loop's stop event from the caller's thread; the flushers finish their round,
unlock their accounts and close their connections, and the thread ends. A crash at any point of
the thread loses nothing (see buffer/flusher.py); the runner reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import uvloop

from buffer.flush_main import run_flushers
from buffer.flusher import AfterCommit
from buffer.recovery import GRACE_MS
from buffer.runner import FlushRunner
from buffer.tuning import BufferTuning

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 30.0
RETRY_S = 1.0


class FlusherThread:
    """``run_flushers`` (buffer.flush_main) on a daemon thread; ``start`` then ``await stop()``."""

    def __init__(self, database_url: str, make_redis: Callable[[], Any], defaults: BufferTuning, *,
                 only_accounts: Sequence[str] | None = None, grace_ms: int = GRACE_MS,
                 standby_wait_ms: int = 0, name: str = "buffer-flushers",
                 after_commit: AfterCommit | None = None) -> None:
        self.database_url = database_url
        self.make_redis = make_redis
        self.defaults = defaults
        self.only_accounts = list(only_accounts) if only_accounts is not None else None
        self.grace_ms = grace_ms
        self.standby_wait_ms = standby_wait_ms
        self.after_commit = after_commit
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._runner: FlushRunner | None = None
        self.failed: BaseException | None = None

    @property
    def owned(self) -> frozenset[str]:
        """The accounts this thread's flushers hold now (for start-up waits and tests). Read from the other
        thread: ``FlushRunner.owned`` copies each worker's set in one C call, under the GIL."""
        return frozenset(self._runner.owned) if self._runner is not None else frozenset()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(JOIN_TIMEOUT_S):
            raise RuntimeError("the flusher thread did not start")

    async def stop(self) -> None:
        """Ask the flushers to stop and wait (without blocking the caller's loop) for the thread to end."""
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed already: the thread is ending
                self._loop.call_soon_threadsafe(self._stop.set)
        await asyncio.to_thread(self._thread.join, JOIN_TIMEOUT_S)
        if self._thread.is_alive():
            log.error("the flusher thread did not stop within %s s", JOIN_TIMEOUT_S)

    def _main(self) -> None:
        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._run())
        except BaseException as exc:  # logged; the engine keeps serving and the buffer keeps every leg
            self.failed = exc
            log.exception("the flusher thread ended with an error")
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _run(self) -> None:
        self._stop = stop = asyncio.Event()
        self._ready.set()
        while not stop.is_set():
            try:
                await run_flushers(self.database_url, "", self.defaults, self.only_accounts, self.grace_ms,
                                   stop=stop, standby_wait_ms=self.standby_wait_ms, redis_client=self.make_redis(),
                                   on_runner=self._on_runner, after_commit=self.after_commit)
            except Exception:  # e.g. PostgreSQL down when the pool opens: the runner itself retries the rest
                log.exception("flushers failed to start; trying again")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RETRY_S)

    def _on_runner(self, runner: FlushRunner) -> None:
        self._runner = runner
