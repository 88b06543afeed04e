"""64 concurrent writers credit and debit a split account while it is resized 4 -> 16 -> 2."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest

from accounts.errors import InsufficientFunds, SplitConflict
from accounts.split_store import split_view
from accounts.store import trial_balance
from buffer.errors import HotBufferError
from engine.booking import Booker
from engine.ledger_admin.accounts import tidy_account
from tests.factories import new_txn_no
from tests.split.conftest import BookingMode
from tests.split.helpers import check_family, credit, debit, open_family, open_source, split

WRITERS = 64
OPS_PER_WRITER = 40


@pytest.mark.slow
async def test_conservation_under_64_writers_while_resizing_4_16_2(pool: asyncpg.Pool,
                                                                   booking_mode: BookingMode) -> None:
    booker = booking_mode.booker
    async with pool.acquire() as conn:
        fam = await open_family(conn, hot=booking_mode.hot)
        sources = [await open_source(conn) for _ in range(WRITERS)]  # only the split account is shared
    booking_mode.watch(fam.parent.id)
    await credit(booker, fam, 50_000)
    await booking_mode.drain(fam.parent.id)
    await split(booker, fam.parent.id, 4)
    if booking_mode.hot:
        await asyncio.sleep(1.3)  # the hot subs start taking legs once every buffer cache knows them
    expected = 50_000
    done = 0
    rejected = 0
    total_ops = WRITERS * OPS_PER_WRITER
    third, two_thirds = asyncio.Event(), asyncio.Event()

    async def writer(seed: int) -> None:
        nonlocal expected, done, rejected
        rng = random.Random(seed)
        source = sources[seed]
        for _ in range(OPS_PER_WRITER):
            amount = rng.randint(1, 2_000)
            try:
                if rng.random() < 0.5:
                    await credit(booker, fam, amount, source)
                    expected += amount
                else:
                    await debit(booker, fam, amount, source)
                    expected -= amount
            except (InsufficientFunds, HotBufferError):  # refused whole: nothing booked
                rejected += 1
            done += 1
            if done >= total_ops // 3:
                third.set()
            if done >= 2 * total_ops // 3:
                two_thirds.set()

    async def resizer() -> list[int]:
        seen = []
        for event, into in ((third, 16), (two_thirds, 2)):
            await event.wait()
            for attempt in range(100):  # another app's tidy task may hold the family's lock a moment: retry
                try:
                    await split(booker, fam.parent.id, into)
                    break
                except SplitConflict:
                    assert attempt < 99, "the family stayed locked"
                    await asyncio.sleep(0.1)
            async with pool.acquire() as conn:
                seen.append((await split_view(conn, fam.parent.id)).sub_count)
        return seen

    results = await asyncio.gather(resizer(), *(writer(i) for i in range(WRITERS)))
    assert results[0] == [16, 2]
    assert done == total_ops and rejected < total_ops // 2
    await booking_mode.drain(fam.parent.id)
    async with pool.acquire() as conn:
        assert await check_family(conn, fam.parent.id) == expected
        on_subs = await conn.fetchval("SELECT count(DISTINCT l.account_id) FROM journal_legs l"
                                      " JOIN accounts a ON a.id = l.account_id WHERE a.parent_id = $1"
                                      " AND l.txn_no IN (SELECT txn_no FROM journal_entries WHERE txn_code <> 'SWEEP')",
                                      fam.parent.id)
        assert on_subs >= 4, "writers' legs did not spread over the subs"
        # Every process in this test shares one directory, so nothing can route to retired subs now.
    await tidy_account(booker, new_txn_no, fam.parent.id, grace_s=0)  # sweeps what late legs left
    await booking_mode.drain(fam.parent.id)
    closed = await tidy_account(booker, new_txn_no, fam.parent.id, grace_s=0)
    closed_total = int(await pool.fetchval(
        "SELECT count(*) FROM accounts WHERE parent_id = $1 AND status = 'closed'", fam.parent.id))
    assert closed_total == 14 and len(closed) <= 14
    async with pool.acquire() as conn:
        assert await check_family(conn, fam.parent.id) == expected
        view = await split_view(conn, fam.parent.id)
        assert view.sub_count == 2 and [s.status for s in view.subs].count("open") == 2
        tb = await trial_balance(conn)
        assert not [m for m in tb.mismatched_accounts if m[0].startswith(fam.parent.id)]
        assert all(t.balanced for t in tb.projected)
        # The family's own books balance too: what the sources gave is what the family holds.
        given = await conn.fetchval("SELECT sum(balance) FROM accounts WHERE id = ANY($1::text[])",
                                    [fam.source.id, *(s.id for s in sources)])
        assert given == expected


async def test_family_invariants_hold_with_a_booker_per_writer_group(pool: asyncpg.Pool) -> None:
    """Several Bookers (as several processes would have) each with their own directory."""
    bookers = [Booker(pool) for _ in range(4)]
    async with pool.acquire() as conn:
        fam = await open_family(conn)
    await split(bookers[0], fam.parent.id, 8)
    await asyncio.gather(*(credit(bookers[i % 4], fam, 3) for i in range(64)))
    async with pool.acquire() as conn:
        assert await check_family(conn, fam.parent.id) == 192
        assert (await split_view(conn, fam.parent.id)).own_balance_minor == 0
