"""Natural batching of concurrent calls: the calls that arrive while one group runs go out as the next group.

``Grouped(run_group, group_max)``: ``await grouped.call(item)`` returns this item's result from
``run_group(items)``, which gets up to ``group_max`` items at once and returns one result per item, in order
(an exception in an item's place is raised to that caller only); if ``run_group`` itself raises, every
caller of that group gets the error. Used where many requests make the same small round trip at once
(limit usage rows, the limit counters' Redis pipelines); the payment batcher is its own, larger, case.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Grouped(Generic[T, R]):
    def __init__(self, run_group: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]],
                 group_max: int) -> None:
        assert group_max > 0
        self._run_group = run_group
        self._group_max = group_max
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None  # held: a task nobody references may be collected

    async def call(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run_all())
        # Shielded: a cancelled caller does not cancel the group its item is part of.
        return await asyncio.shield(future)

    async def _run_all(self) -> None:
        group: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._pending:
                group, self._pending = self._pending[:self._group_max], self._pending[self._group_max:]
                try:
                    results = await self._run_group([item for item, _ in group])
                except Exception as exc:
                    _settle(group, [exc] * len(group))
                else:
                    _settle(group, results)
        finally:
            self._task = None
            left = group + self._pending
            self._pending = []
            _settle(left, [RuntimeError("grouped calls stopped")] * len(left))  # cancelled: nobody waits forever


def _settle(group: Sequence[tuple[object, asyncio.Future[R]]], results: Sequence[R | BaseException]) -> None:
    for (_, future), result in zip(group, results, strict=True):
        if future.done():
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
