"""Background tasks tied to a block: started on entry, cancelled and awaited on exit.

    async with background(("gateway-worker", worker.run()), ("gateway-janitor", janitor.run())):
        yield

Every process role's cleanup context runs its loops this way, so none can outlive its block or end it
with a task left running (or an exception of a cancelled task unseen).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

BackgroundJob = tuple[str, Coroutine[Any, Any, Any]]


@contextlib.asynccontextmanager
async def background(*jobs: BackgroundJob) -> AsyncIterator[list[asyncio.Task[Any]]]:
    """Run each ``(name, coroutine)`` as a task for the duration of the block."""
    tasks = [asyncio.create_task(coro, name=name) for name, coro in jobs]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
