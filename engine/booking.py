"""Booking: the one path by which the engine books journal entries.

``Booker.transaction`` opens a PostgreSQL transaction in which a request writes its own rows and
posts entries. Legs on hot accounts come back 'buffered'; after the commit they are handed to the
hot-account buffer (when one is configured), and a rollback releases anything reserved for them.
Without a buffer, hot legs stay 'buffered' in PostgreSQL for a later flush or recovery sweep.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

import asyncpg

from accounts.journal import EntryDraft
from accounts.split_store import SplitDirectory
from accounts.store import Conn, PostedEntry, post_entry
from engine.db import release_without_reset

log = logging.getLogger(__name__)


class HotLegSink(Protocol):
    """What the buffer promises the booking path (implemented in buffer/)."""

    async def reserve(self, entry: EntryDraft) -> object:
        """Reserve hot non-overdraft debits of ``entry`` against projected balances before commit.

        Returns an opaque reservation; raises a LedgerError (e.g. InsufficientFunds) to refuse, or a
        retryable error when the check cannot be made (Redis down) or the buffer is over its lag."""
        ...

    async def release(self, reservation: object) -> None:
        """The transaction did not commit: give the reserved amounts back."""
        ...

    async def enqueue(self, entries: Sequence[PostedEntry], reservations: Sequence[object]) -> None:
        """After commit: enqueue the buffered legs. Must not raise for Redis being down (recovery)."""
        ...


# The statement that posts an entry: accounts.store.post_entry, or one that writes other rows with it.
PostingStatement = Callable[[Conn, EntryDraft], Awaitable[PostedEntry]]


class BookingTransaction:
    def __init__(self, conn: Conn, sink: HotLegSink | None, splits: SplitDirectory | None = None) -> None:
        self.conn = conn
        self._sink = sink
        self._splits = splits
        self.posted: list[PostedEntry] = []
        self.reservations: list[object] = []

    async def post(self, entry: EntryDraft, statement: PostingStatement = post_entry) -> PostedEntry:
        if self._splits is not None:  # legs naming a split parent go to its sub-accounts
            entry = await self._splits.route(self.conn, entry)
        if self._sink is not None:
            self.reservations.append(await self._sink.reserve(entry))
        posted = await statement(self.conn, entry)
        self.posted.append(posted)
        return posted


class Booker:
    def __init__(self, pool: asyncpg.Pool, sink: HotLegSink | None = None,
                 splits: SplitDirectory | None = None) -> None:
        self.pool = pool
        self.sink = sink
        self.splits = splits if splits is not None else SplitDirectory()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[BookingTransaction]:
        """One database transaction for a request's rows and entries; hot legs enqueued after commit."""
        async with self.pool.acquire() as conn:
            tx = BookingTransaction(conn, self.sink, self.splits)
            try:
                async with conn.transaction():
                    yield tx
            except BaseException:
                await self._release(tx)
                raise
        await self._enqueue(tx)

    async def book(self, entry: EntryDraft) -> PostedEntry:
        """Book one entry on its own. The posting function is a single statement, so it runs as its
        own implicit transaction: one round trip instead of BEGIN, post, COMMIT."""
        return await self.book_statement(entry, post_entry)

    async def book_statement(self, entry: EntryDraft, statement: PostingStatement) -> PostedEntry:
        """Book ``entry`` by ONE statement, run by ``statement`` on a pooled connection as its own implicit
        transaction, e.g. a payment's rows and its posting in one SQL function: no BEGIN and COMMIT round
        trips. ``statement`` gets the entry as routed to split sub-accounts (hot debits reserved before) and
        must leave no session state (transaction-local locks and settings only); hot legs are enqueued after
        it returned, and a failure gives the reservations back."""
        async with self.pool.acquire() as conn:
            tx = BookingTransaction(conn, self.sink, self.splits)
            try:
                posted = await tx.post(entry, statement)
            except BaseException:
                await self._release(tx)
                raise
            release_without_reset(conn)  # one statement, its locks transaction-local: nothing to reset
        await self._enqueue(tx)
        return posted

    async def _release(self, tx: BookingTransaction) -> None:
        if self.sink is not None:
            for reservation in tx.reservations:
                await self.sink.release(reservation)

    async def _enqueue(self, tx: BookingTransaction) -> None:
        if self.sink is not None and any(p.buffered_legs for p in tx.posted):
            await self.sink.enqueue(tx.posted, tx.reservations)
