"""Small ledger helpers for day-end tests: accounts and balanced entries through the real store."""

from __future__ import annotations

from datetime import date

import asyncpg

from accounts.model import AccountId, AccountKind, OverdraftMode
from accounts.rules import build_entry
from accounts.store import post_entry
from engine.dayend.calendar import read_open_date
from tests.factories import new_txn_no, open_test_account


async def funded_pair(pool: asyncpg.Pool, amount: int = 10_000) -> tuple[AccountId, AccountId]:
    """A channel receivable and a customer wallet funded from it by one TOPUP."""
    async with pool.acquire() as conn:
        source = await open_test_account(conn, role="channel_receivable", kind=AccountKind.INTERNAL,
                                         overdraft=OverdraftMode.UNLIMITED)
        wallet = await open_test_account(conn)
        await topup(conn, source.id, wallet.id, amount)
    return source.id, wallet.id


async def topup(conn: asyncpg.Connection, source: str, wallet: str, amount: int, day: date | None = None) -> str:
    txn_no = new_txn_no()
    day = day or await read_open_date(conn)
    await post_entry(conn, build_entry("TOPUP", txn_no, day, "CNY",
                                       {"channel_receivable": AccountId(source), "customer_wallet": AccountId(wallet)},
                                       {"amount": amount}))
    return txn_no
