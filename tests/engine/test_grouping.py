"""Grouped calls: what arrives while a group runs goes out as the next group; each caller gets its own answer."""

from __future__ import annotations

import asyncio

import pytest

from engine.grouping import Grouped


async def test_calls_made_while_a_group_runs_go_out_together_in_order() -> None:
    groups: list[list[int]] = []
    gate = asyncio.Event()

    async def run(items: list[int]) -> list[int | BaseException]:
        groups.append(items)
        if len(groups) == 1:
            await gate.wait()
        return [i * 10 if i != 4 else ValueError(i) for i in items]

    grouped: Grouped[int, int] = Grouped(run, group_max=3)
    first = asyncio.create_task(grouped.call(0))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(grouped.call(i)) for i in range(1, 6)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(first, *rest, return_exceptions=True)
    assert groups == [[0], [1, 2, 3], [4, 5]]  # bounded by group_max, in arrival order
    assert results[:4] == [0, 10, 20, 30] and results[5] == 50
    assert isinstance(results[4], ValueError)  # only its own caller sees an item's error


async def test_a_failed_group_fails_each_of_its_callers_and_the_next_group_runs() -> None:
    calls = 0

    async def run(items: list[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("down")
        return list(items)

    grouped: Grouped[int, int] = Grouped(run, group_max=10)
    with pytest.raises(ConnectionError):
        await grouped.call(1)
    assert await grouped.call(2) == 2
