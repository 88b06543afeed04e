"""Migration 067 opens the fee-payable account for merchants onboarded before it existed."""

from __future__ import annotations

import asyncpg

from accounts.model import AccountKind, OverdraftRule
from engine.merchants.pricing import Pricing
from engine.merchants.store import ensure_account, insert_merchant
from engine.migrate import load_migrations, migrate
from tests.conftest import Servers
from tests.databases import private_database
from tests.factories import rand_id

FEE_PLANS_MIGRATION = 67


async def _migrate_before(conn: asyncpg.Connection, number: int) -> None:
    """Apply (and record, as migrate() does) every migration numbered below ``number``."""
    await conn.execute("CREATE TABLE schema_migrations (number int PRIMARY KEY, name text NOT NULL,"
                       " applied_at timestamptz NOT NULL DEFAULT now())")
    for m in load_migrations():
        if m.number < number:
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute("INSERT INTO schema_migrations (number, name) VALUES ($1, $2)", m.number, m.name)


async def test_existing_merchants_get_a_fee_payable_account_per_pending_currency(servers: Servers) -> None:
    async with private_database(servers.database_url, "fee_payable_mig", migrated=False) as url:
        conn = await asyncpg.connect(url)
        try:
            await _migrate_before(conn, FEE_PLANS_MIGRATION)
            merchant = rand_id("mch")
            assert await insert_merchant(conn, merchant, "old merchant", b"salt" * 4, Pricing(60, 0), None)
            for currency in ("CNY", "USD"):
                await ensure_account(conn, merchant, "merchant_pending", currency, AccountKind.MERCHANT, False,
                                     OverdraftRule(), rand_id("acct"))
            assert "067_fee_plans.sql" in await migrate(conn)
            rows = await conn.fetch("SELECT currency, subject_code, normal_side, balance, kind FROM accounts"
                                    " WHERE owner_id = $1 AND role = 'merchant_fee_payable' ORDER BY currency",
                                    merchant)
            assert [tuple(r) for r in rows] == [("CNY", "1201", "D", 0, "merchant"),
                                                ("USD", "1201", "D", 0, "merchant")]
            assert await conn.fetchval("SELECT fee_plan FROM merchants WHERE id = $1", merchant) is None
            assert await migrate(conn) == []  # applied once
        finally:
            await conn.close()
