"""Background loops end when their block ends, even when a cancel is lost on the way (Python 3.11)."""

from __future__ import annotations

import asyncio

from engine.background import background, cancel_and_wait


async def test_a_loop_that_loses_its_first_cancels_still_ends() -> None:
    lost = 0
    rounds = 0

    async def loop_losing_cancels() -> None:
        # As a loop does whose Redis call's wait_for returned a result instead of raising the cancel.
        nonlocal lost, rounds
        while True:
            rounds += 1
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if lost < 2:
                    lost += 1
                    continue
                raise

    task = asyncio.create_task(loop_losing_cancels())
    await asyncio.sleep(0.05)
    await asyncio.wait_for(cancel_and_wait([task]), 5)
    assert task.cancelled()
    assert lost == 2


async def test_the_block_ends_its_loops_and_raises_a_loop_s_own_error() -> None:
    ran: list[str] = []

    async def forever() -> None:
        while True:
            ran.append("tick")
            await asyncio.sleep(0.01)

    async def fails() -> None:
        raise ValueError("broken loop")

    try:
        async with background(("forever", forever()), ("fails", fails())) as tasks:
            await asyncio.sleep(0.05)
    except ValueError as exc:
        assert str(exc) == "broken loop"
    else:
        raise AssertionError("the failed loop's error was not raised")
    assert all(t.done() for t in tasks)
    assert ran


async def test_a_task_that_will_not_end_is_given_up_on_after_the_bound() -> None:
    stop = asyncio.Event()

    async def stubborn() -> None:
        while not stop.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(stubborn())
    await asyncio.wait_for(cancel_and_wait([task], give_up_s=0.3), 5)
    assert not task.done()
    stop.set()
    await task
