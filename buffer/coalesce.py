"""Group enqueue: the hot legs of payments that commit at about the same time go to Redis together.

Each committed booking hands its buffered legs (and the reservations they turn into pending) to the
``EnqueueCoalescer`` and waits. At most one send is in flight; everything that arrives while it runs
goes out in the next one, as one script call per hot account carrying every waiting payment's legs
(group commit, applied to the buffer). Under load a hot account then costs one Redis command per
round trip instead of one per payment, and with no load a payment's legs go out at once.

Order: the enqueue script numbers legs in the order it receives them; a send orders the waiting
entries by transaction number, and entries that committed earlier were sent earlier, so sequence
numbers follow transaction numbers as closely as commit order allows. Inside one entry the legs of
one account keep ``apply_order`` (credits before debits).

A send never raises to the bookings waiting on it: their entries are committed, so a Redis failure
only leaves the legs 'buffered' in PostgreSQL for the recovery sweep (see sink.enqueue).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

Leg = tuple[str, int, int, int]  # (txn_no, leg_no, delta, enqueued_ms)
MAX_LEGS_PER_CALL = 2_000  # keeps one Lua call short: Redis runs scripts one at a time


@dataclass(slots=True)
class AccountWork:
    """What one send carries for one hot account."""

    legs: list[Leg] = field(default_factory=list)
    reservation_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Waiting:
    legs: dict[str, list[Leg]]
    reservation_ids: dict[str, list[str]]
    done: asyncio.Future[None]


Sender = Callable[[dict[str, list[AccountWork]]], Awaitable[None]]


class EnqueueCoalescer:
    """``submit`` from many bookings; ``send`` receives, per account, one or more chunks of work."""

    def __init__(self, send: Sender) -> None:
        self._send = send
        self._waiting: list[_Waiting] = []
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, legs: dict[str, list[Leg]], reservation_ids: dict[str, list[str]]) -> None:
        """Queue one booking's legs and wait until the send that carries them has finished."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(legs, reservation_ids, done))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._drain(), name="buffer-enqueue")
        # A cancelled caller does not cancel the send: its entry is committed and still goes out.
        await asyncio.shield(done)

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await self._send(group(batch))
            finally:
                for waiting in batch:
                    if not waiting.done.done():
                        waiting.done.set_result(None)


def group(batch: Sequence[_Waiting]) -> dict[str, list[AccountWork]]:
    """Per account, the waiting bookings' legs in transaction-number order, cut into bounded chunks."""
    per_account: dict[str, list[tuple[str, list[Leg], list[str]]]] = {}
    for waiting in batch:
        for account_id in waiting.legs.keys() | waiting.reservation_ids.keys():
            legs = waiting.legs.get(account_id, [])
            first_txn = legs[0][0] if legs else ""
            per_account.setdefault(account_id, []).append(
                (first_txn, legs, waiting.reservation_ids.get(account_id, [])))
    out: dict[str, list[AccountWork]] = {}
    for account_id, items in per_account.items():
        items.sort(key=lambda item: item[0])
        chunks = [AccountWork()]
        for _, legs, reservation_ids in items:
            if chunks[-1].legs and len(chunks[-1].legs) + len(legs) > MAX_LEGS_PER_CALL:
                chunks.append(AccountWork())
            chunks[-1].legs.extend(legs)
            chunks[-1].reservation_ids.extend(reservation_ids)
        out[account_id] = chunks
    return out
