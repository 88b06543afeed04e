"""Posting modes a hot-merchant run compares: how the merchant-side accounts are booked.

A mode prepares its own accounts (mark hot, split), hands the workload a Booker, runs whatever
background work it needs (flushers) and stops it. Modes whose code has not landed report why they
are unavailable instead of producing a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import asyncpg
import redis.asyncio as aioredis

from bench.load import Sampler
from bench.workload import WorkloadAccounts
from engine.booking import Booker
from engine.txn_no import TxnNoGenerator


@dataclass
class BenchContext:
    pool: asyncpg.Pool
    redis: aioredis.Redis
    txn_nos: TxnNoGenerator
    database_url: str
    redis_url: str
    flushers: str = "inproc"  # or "process": buffer.flush_main as its own process


class PostingMode(Protocol):
    name: str
    shared: bool  # one merchant for all payers (False: the distinct-merchant reference)

    def unavailable(self) -> str | None:
        """Why this mode cannot run in this checkout (code not landed), or None."""
        ...

    async def prepare(self, ctx: BenchContext, accounts: WorkloadAccounts) -> None:
        """One-time set-up of the mode's accounts (mark hot, split) before any load."""
        ...

    async def start(self, ctx: BenchContext, accounts: WorkloadAccounts) -> Booker:
        """Start background work (flushers) for one load window and return the booker to post with."""
        ...

    async def stop(self) -> None:
        """Stop background work; buffered legs must already be drained (the runner waits for it)."""
        ...

    def samplers(self) -> dict[str, Sampler]:
        ...


class SyncMode:
    """Every leg applied in the request's transaction: the hot rows are locked by every payment."""

    def __init__(self, name: str = "sync", shared: bool = True) -> None:
        self.name = name
        self.shared = shared

    def unavailable(self) -> str | None:
        return None

    async def prepare(self, ctx: BenchContext, accounts: WorkloadAccounts) -> None:
        return None

    async def start(self, ctx: BenchContext, accounts: WorkloadAccounts) -> Booker:
        return Booker(ctx.pool)

    async def stop(self) -> None:
        return None

    def samplers(self) -> dict[str, Sampler]:
        return {}


def distinct_mode() -> SyncMode:
    """The reference: the same payments, but every payer has its own merchant, fee and transit rows."""
    return SyncMode("distinct", shared=False)


def all_modes() -> dict[str, PostingMode]:
    """Every mode by name, available or not (the runner prints why an unavailable one is skipped)."""
    from bench.modes_hot import batched_mode, buffered_mode, split_mode

    modes: list[PostingMode] = [
        SyncMode(), distinct_mode(), buffered_mode(), split_mode(16, buffered=False), split_mode(16, buffered=True),
        batched_mode(), batched_mode(buffered=False),
    ]
    return {m.name: m for m in modes}
