"""Demo data for ``make run``: merchants with API keys, funded customers, the platform accounts.

Seeding is idempotent (fixed ids; existing rows are kept), so ``payengine serve --demo`` can run on
every start. Merchant secrets are derived, so the same server key always prints the same secrets.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg

from accounts.model import AccountId, AccountKind, OverdraftRule
from accounts.rules import build_entry
from engine.booking import Booker
from engine.customers.store import get_customer, insert_customer, insert_topup
from engine.errors import DuplicateOrder
from engine.keys import ACCOUNT, MERCHANT, TOPUP, new_id
from engine.merchants.pricing import Pricing
from engine.merchants.signing import derive_secret
from engine.merchants.store import (
    MerchantRecord,
    ensure_account,
    ensure_platform_accounts,
    get_merchant,
    insert_merchant,
)
from engine.migrate import migrate
from engine.settings import Settings
from engine.txn_no import NodeLease, TxnNoGenerator

DEMO_MERCHANT = "mch_demo"
HOT_MERCHANT = "mch_hot"
DEMO_CUSTOMERS = (("cus_demo_alice", "alice"), ("cus_demo_bob", "bob"))
DEMO_FUNDING_MINOR = 1_000_000
DEMO_SALT = b"payengine-demo-salt"  # fixed so the printed demo secret is stable across restarts


async def _seed_merchant(conn: asyncpg.Connection, merchant_id: str, name: str, hot: bool,
                         settings: Settings) -> MerchantRecord:
    async with conn.transaction():
        await insert_merchant(conn, merchant_id, name, DEMO_SALT, Pricing(fee_bps=60))
        for currency in settings.currencies:
            await ensure_account(conn, merchant_id, "merchant_pending", currency, AccountKind.MERCHANT, hot,
                                 OverdraftRule(), new_id(ACCOUNT))
    merchant = await get_merchant(conn, merchant_id)
    assert merchant is not None
    return merchant


async def seed(settings: Settings, database_url: str) -> list[tuple[str, str]]:
    """Seed demo rows; returns (merchant id, secret) pairs."""
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        platform = {c: await ensure_platform_accounts(conn, c, settings.hot_internal_accounts, lambda: new_id(ACCOUNT))
                    for c in settings.currencies}
        merchants = [await _seed_merchant(conn, DEMO_MERCHANT, "Demo Shop", False, settings),
                     await _seed_merchant(conn, HOT_MERCHANT, "Hot Marketplace", True, settings)]
        lease = await NodeLease.acquire(conn, settings.node_lease_s)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        txn_nos = TxnNoGenerator(settings.system_code, settings.environment_code, settings.shard, lease.node_id)
        booker = Booker(pool)
        currency = settings.currencies[0]
        for merchant in merchants:
            for suffix, external in DEMO_CUSTOMERS:
                customer_id = f"{suffix}_{merchant.id.removeprefix(f'{MERCHANT}_')}"
                now = datetime.now(UTC)
                async with pool.acquire() as conn:
                    existing = await get_customer(conn, merchant.id, customer_id)
                if existing is not None:
                    continue
                async with booker.transaction() as tx:
                    try:
                        customer = await insert_customer(tx.conn, customer_id, merchant.id, external, currency,
                                                         new_id(ACCOUNT), now)
                    except DuplicateOrder:
                        continue
                    txn_no = txn_nos.next(now)
                    await insert_topup(tx.conn, new_id(TOPUP), customer.id, "demo-funding", DEMO_FUNDING_MINOR,
                                       txn_no, now)
                    await tx.post(build_entry(
                        "TOPUP", txn_no, now.date(), currency,
                        {"channel_receivable": platform[currency]["channel_receivable"],
                         "customer_wallet": AccountId(customer.wallet_account_id)},
                        {"amount": DEMO_FUNDING_MINOR}))
        async with pool.acquire() as conn:
            await lease.release(conn)
    finally:
        await pool.close()
    return [(m.id, derive_secret(settings.api_secret_key, m.id, m.secret_salt)) for m in merchants]


def seed_and_print(settings: Settings, database_url: str, stop_note: str) -> None:
    secrets = asyncio.run(seed(settings, database_url))
    print(f"payengine demo: http://{settings.host}:{settings.port}  (OpenAPI at /openapi.json)")
    for merchant_id, secret in secrets:
        print(f"  merchant {merchant_id}  secret {secret}")
    print(f"  customers: {', '.join(c for c, _ in DEMO_CUSTOMERS)} (+ _demo / _hot suffix), "
          f"each funded with {DEMO_FUNDING_MINOR} {settings.currencies[0]} minor units")
    print(f"  try (another terminal): make demo   (or .venv/bin/payengine demo)\n"
          f"  metrics: http://{settings.host}:{settings.port}/metrics   admin token: PAYENGINE_ADMIN_TOKEN\n"
          f"  stop: {stop_note}", flush=True)


async def run_demo(settings: Settings, base_url: str) -> int:
    """The scripted flow of ``payengine demo`` against a running server: wallet payment, refund, channel payment."""
    import uuid

    from engine.client import PayEngineClient

    secret = derive_secret(settings.api_secret_key, DEMO_MERCHANT, DEMO_SALT)
    customer = f"{DEMO_CUSTOMERS[0][0]}_demo"
    currency = settings.currencies[0]
    async with PayEngineClient(base_url, DEMO_MERCHANT, secret) as client:
        run = uuid.uuid4().hex[:8]
        paid = await client.create_payment({"merchant_order_no": f"demo-{run}", "amount": 1999, "currency": currency,
                                            "method": "wallet", "customer_id": customer, "description": "demo tea"})
        print(f"wallet payment  -> {paid.status} {paid.body}")
        if not paid.ok:
            return 1
        refund = await client.refund(paid.body["id"], 500, f"demo-rf-{run}")
        print(f"partial refund  -> {refund.status} {refund.body}")
        channel = await client.create_payment({"merchant_order_no": f"demo-ch-{run}", "amount": 2999,
                                               "currency": currency, "method": "channel"})
        print(f"channel payment -> {channel.status} {channel.body}")
        wallet = await client.get_customer(customer)
        print(f"customer wallet -> balance {wallet.body.get('balance')}")
        return 0 if refund.ok and channel.ok else 1
