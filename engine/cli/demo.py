"""Demo data for ``make run`` (merchants with API keys, funded customers, the platform accounts), the banner it
prints, and the scripted ``payengine demo`` against it.

Seeding is idempotent (fixed ids; existing rows are kept), so ``payengine serve --demo`` can run on
every start. Merchant secrets are derived, so the same server key always prints the same secrets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg

from accounts.model import AccountId, AccountKind, OverdraftRule
from accounts.rules import build_entry
from engine.booking import Booker
from engine.cli.channel_sims import RUN_FILE, SimulatorsUp
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

if TYPE_CHECKING:
    from engine.client import PayEngineClient

DEMO_MERCHANT = "mch_demo"
HOT_MERCHANT = "mch_hot"
DEMO_CUSTOMERS = (("cus_demo_alice", "alice"), ("cus_demo_bob", "bob"))
DEMO_FUNDING_MINOR = 1_000_000
DEMO_SALT = b"payengine-demo-salt"  # fixed so the printed demo secret is stable across restarts
POLL_INTERVAL_S = 0.1


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


def seed_demo(settings: Settings, database_url: str) -> list[tuple[str, str]]:
    """Seed the demo rows (idempotent); returns (merchant id, secret) pairs."""
    return asyncio.run(seed(settings, database_url))


def print_banner(settings: Settings, secrets: list[tuple[str, str]], sims: SimulatorsUp | None,
                 stop_note: str) -> None:
    """What ``make run`` prints before it serves: where, who, which channels, what to try, how to stop."""
    url = f"http://{settings.host}:{settings.port}"
    lines = [f"payengine demo: {url}  (OpenAPI at {url}/openapi.json; guide: docs/API.md)"]
    lines += [f"  merchant {merchant_id}  secret {secret}" for merchant_id, secret in secrets]
    lines.append(f"  customers: {', '.join(c for c, _ in DEMO_CUSTOMERS)} (+ _demo / _hot suffix), "
                 f"each funded with {DEMO_FUNDING_MINOR} {settings.currencies[0]} minor units")
    if sims is not None:
        lines.append("  channel simulators, started with the engine (PAYENGINE_CHANNELS for this run):")
        lines += [f"    {name:<8} {sim_url}" for name, sim_url in sims.urls.items()]
        first = next(iter(sims.urls.values()))
        lines += ["  pay a channel payment by hand: POST its voucher's pay_url to the simulator of its voucher's"
                  " channel, e.g.", f"    {sims.pay_command(first)}"]
    else:
        lines.append(f"  channels: {', '.join(spec.name for spec in settings.channels) or 'none'} (PAYENGINE_CHANNELS)")
    lines.append("  try (another terminal): make demo   (or .venv/bin/payengine demo): a wallet payment, a refund,"
                 " and a channel payment paid at the simulator")
    lines.append(f"  metrics: {url}/metrics   admin token: PAYENGINE_ADMIN_TOKEN")
    lines.append(f"  stop: {stop_note}" + ("; the simulators stop with the engine" if sims is not None else ""))
    print("\n".join(lines), flush=True)
async def run_demo(settings: Settings, base_url: str, simulators: dict[str, str], wait_s: float) -> int:
    """The scripted flow of ``payengine demo`` against a running server, one line per step: a wallet payment, a
    partial refund, and a channel payment taken to its end: voucher ready, paid at the simulator of its channel
    (``simulators``: channel name -> URL), notified, succeeded. 0 when every step did what it should."""
    import uuid

    from engine.client import PayEngineClient

    secret = derive_secret(settings.api_secret_key, DEMO_MERCHANT, DEMO_SALT)
    customer = f"{DEMO_CUSTOMERS[0][0]}_demo"
    currency = settings.currencies[0]
    run = uuid.uuid4().hex[:8]
    async with PayEngineClient(base_url, DEMO_MERCHANT, secret) as client:
        paid = await client.create_payment({"merchant_order_no": f"demo-{run}", "amount": 1999, "currency": currency,
                                            "method": "wallet", "customer_id": customer, "description": "demo tea"})
        _step("wallet payment", paid.status, paid.body, f"1999 {currency} from {customer}")
        if not paid.ok:
            return 1
        refund = await client.refund(paid.body["id"], 500, f"demo-rf-{run}")
        _step("partial refund", refund.status, refund.body, f"500 {currency} of {paid.body['id']}")
        channel = await client.create_payment({"merchant_order_no": f"demo-ch-{run}", "amount": 2999,
                                               "currency": currency, "method": "channel"})
        _step("channel payment", channel.status, channel.body, f"2999 {currency}")
        completed = channel.ok and await _complete_channel_payment(client, channel.body["id"], simulators, wait_s)
        wallet = await client.get_customer(customer)
        print(f"customer wallet  -> balance {wallet.body.get('balance')} {currency}", flush=True)
    return 0 if refund.ok and completed else 1


def _step(name: str, http_status: int, body: dict[str, Any], what: str) -> None:
    if 200 <= http_status < 300:
        print(f"{name:<16} -> {http_status} {body.get('status')}  {body.get('id')}  {what}", flush=True)
    else:
        print(f"{name:<16} -> {http_status} {body.get('error', body)}", flush=True)


async def _complete_channel_payment(client: PayEngineClient, payment_id: str, simulators: dict[str, str],
                                    wait_s: float) -> bool:
    """Wait for the voucher, pay it at the simulator of its channel, wait for the notify to make it succeed."""
    payment = await _wait_for(client, payment_id, lambda p: p["status"] != "pending_voucher", wait_s)
    voucher = payment.get("voucher") or {}
    if payment["status"] != "awaiting_payment":
        print(f"voucher          -> payment {payment['status']}, voucher {voucher.get('status')}: not payable",
              flush=True)
        return False
    channel = voucher["channel"]
    print(f"voucher ready    -> {channel}: {voucher['pay_url']}", flush=True)
    sim_url = simulators.get(channel)
    if sim_url is None:
        print(f"pay at {channel:<9} -> no simulator of `payengine serve --demo` runs for {channel} (it writes "
              f"them to the data dir's {RUN_FILE}): pay the voucher at the channel, then GET /v1/payments/"
              f"{payment_id}", flush=True)
        return False
    async with aiohttp.ClientSession() as http, http.post(f"{sim_url}/sim/pay",
                                                          json={"pay_url": voucher["pay_url"]}) as answer:
        paid = await answer.json(content_type=None)
    if answer.status != 200:
        print(f"pay at {channel:<9} -> {answer.status} {paid}", flush=True)
        return False
    print(f"pay at {channel:<9} -> paid {paid['paid_minor']} at {sim_url}/sim/pay, channel txn {paid['channel_txn_id']}"
          f", notify {'sent' if paid['notify_sent'] else 'NOT sent'}", flush=True)
    started = time.monotonic()
    payment = await _wait_for(client, payment_id, lambda p: p["status"] != "awaiting_payment", wait_s)
    print(f"notified         -> {payment['status']}  {payment_id}  after {time.monotonic() - started:.1f} s",
          flush=True)
    return bool(payment["status"] == "succeeded")


async def _wait_for(client: PayEngineClient, payment_id: str, done: Callable[[dict[str, Any]], bool],
                    wait_s: float) -> dict[str, Any]:
    """The payment once ``done`` holds for it, or as it is after ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        found = await client.get_payment(payment_id)
        body: dict[str, Any] = found.body
        if (found.ok and done(body)) or time.monotonic() > deadline:
            return body
        await asyncio.sleep(POLL_INTERVAL_S)
