"""Background tasks tied to a block: started on entry, cancelled and awaited on exit.

    async with background(("gateway-worker", worker.run()), ("gateway-janitor", janitor.run())):
        yield

Every process role's cleanup context runs its loops this way, so none can outlive its block or end it
with a task left running (or an exception of a cancelled task unseen).

A cancel can be lost on Python 3.11: ``asyncio.wait_for`` returns its inner result instead of raising
CancelledError when the inner call finishes at the moment the cancel lands (fixed in 3.12), and
redis-py wraps socket writes in ``wait_for``. A loop whose cancel was lost goes on for ever, so
``cancel_and_wait`` cancels again until the task has really ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Iterable
from typing import Any

log = logging.getLogger(__name__)

BackgroundJob = tuple[str, Coroutine[Any, Any, Any]]
RECANCEL_S = 0.5  # a task still running this long after a cancel is cancelled again
GIVE_UP_S = 30.0


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], give_up_s: float = GIVE_UP_S) -> None:
    """Cancel ``tasks`` and wait until each has ended, cancelling again any that went on (a lost cancel).
    After ``give_up_s`` the ones still running are logged and left; a task's own exception is not raised."""
    pending = {t for t in tasks if not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_s
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_S, max(0.0, deadline - loop.time())))
        if pending and loop.time() >= deadline:
            names = sorted(t.get_name() for t in pending)
            log.error("background tasks did not end after cancel", extra={"tasks": names})
            return


@contextlib.asynccontextmanager
async def background(*jobs: BackgroundJob) -> AsyncIterator[list[asyncio.Task[Any]]]:
    """Run each ``(name, coroutine)`` as a task for the duration of the block."""
    tasks = [asyncio.create_task(coro, name=name) for name, coro in jobs]
    try:
        yield tasks
    finally:
        await cancel_and_wait(tasks)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # raises the task's own error, as awaiting it always did
