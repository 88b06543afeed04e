"""``python -m bench.per_payment``: what one wallet payment costs, through the API's own flow minus HTTP.

Builds the API process's Services (``engine.bootstrap.services``, flushers running as in ``payengine
serve``), onboards one hot merchant and funded customers, then ``--concurrency`` workers call
``engine.payments.flow.create_payment`` back to back (each payment with its own Idempotency-Key, the
folded claim the handler uses): limits gate, payment rows, posting, hot legs to the buffer. After a
warm-up (prepared statements, caches) one window of ``--duration`` seconds is measured:

- payments/s and latency percentiles;
- CPU per payment of PostgreSQL (postmaster and every backend/helper, from /proc: bench/proc_cpu.py),
  of Redis and of this process (the engine's Python side), in microseconds;
- PostgreSQL statements per payment and their server time per payment (pg_stat_statements when the
  server has it loaded, else left out).

Money is checked at the end (buffers drained, trial balance, every payment booked once, every wallet
debited exactly). The last stdout line is one JSON object. bench/ab.py runs this from two revisions
side by side, which is how the per-payment changes of issue 18 are measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import uvloop

from accounts.journal import LegDraft, make_entry
from accounts.model import AccountId, AccountKind, AccountSpec, Side
from accounts.store import open_account, post_entry, trial_balance
from accounts.subjects import ROLE_SUBJECTS
from bench.load import percentile
from bench.money import MoneyCheckFailed, wait_drained
from bench.proc_cpu import ProcessTree, own_cpu_s, postgres_tree, single_process
from bench.servers import fresh_servers
from engine.bootstrap import Role, services
from engine.cli.merchants import ops_config
from engine.customers.store import insert_customer
from engine.idempotency.records import IdemSlot
from engine.keys import ACCOUNT, new_id
from engine.merchants import flow as merchants_flow
from engine.merchants import wire as merchants_wire
from engine.merchants.store import MerchantRecord
from engine.payments.flow import create_payment
from engine.payments.wire import CreatePayment
from engine.services import Services
from engine.settings import Settings
from engine.web.idempotency import fingerprint

CURRENCY = "CNY"
AMOUNT_MINOR = 1_000
FUNDING_MINOR = 10**12
CUSTOMERS_PER_WORKER = 8


@dataclass
class Shop:
    merchant: MerchantRecord
    customers: list[list[str]]  # customer ids per worker
    wallets: dict[str, str]  # customer id -> wallet account id
    hot_accounts: list[str]
    paid: dict[str, int] = field(default_factory=dict)  # customer id -> acknowledged payments


async def open_shop(svc: Services, workers: int) -> Shop:
    """One hot merchant (its pending account, fee income and transit hot) and funded customers."""
    now = datetime.now(UTC)
    async with svc.pool.acquire() as conn:
        onboarded = await merchants_flow.onboard(
            conn, ops_config(svc.settings),
            merchants_wire.OnboardMerchant(name="bench per-payment", currencies=[CURRENCY], fee_bps=60, hot=True),
            now)
        async with conn.transaction():
            spec = AccountSpec(id=AccountId(new_id(ACCOUNT)), kind=AccountKind.INTERNAL,
                               owner_id=f"bench_funding_{uuid.uuid4().hex[:8]}", role="channel_receivable",
                               subject_code=ROLE_SUBJECTS["channel_receivable"], currency=CURRENCY)
            funding = (await open_account(conn, spec)).id
            customers: list[list[str]] = []
            wallets: dict[str, str] = {}
            for _ in range(workers):
                ids = [f"cus_bench_{uuid.uuid4().hex[:16]}" for _ in range(CUSTOMERS_PER_WORKER)]
                for cid in ids:
                    record = await insert_customer(conn, cid, onboarded.id, cid, CURRENCY, new_id(ACCOUNT), now)
                    wallets[cid] = record.wallet_account_id
                customers.append(ids)
            legs = [LegDraft(AccountId(funding), Side.DEBIT, FUNDING_MINOR * len(wallets), CURRENCY)]
            legs += [LegDraft(AccountId(w), Side.CREDIT, FUNDING_MINOR, CURRENCY) for w in wallets.values()]
            await post_entry(conn, make_entry(svc.txn_nos.next(now), "TOPUP", now.date(), legs, ref="bench-funding"))
        hot = [r["id"] for r in await conn.fetch("SELECT id FROM accounts WHERE hot")]
    found = await svc.merchants.lookup(onboarded.id)
    assert found is not None
    return Shop(found[0], customers, wallets, hot)


@dataclass
class Window:
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)


async def _pay(svc: Services, shop: Shop, customer_id: str) -> None:
    order = uuid.uuid4().hex
    req = CreatePayment(merchant_order_no=f"ord-{order}", amount=AMOUNT_MINOR, currency=CURRENCY, method="wallet",
                        customer_id=customer_id)
    # The folded Idempotency-Key claim, as run_idempotent hands it to the flow (the fingerprint's body is
    # never compared here: every key is new).
    slot = IdemSlot(shop.merchant.id, f"key-{order}", fingerprint("POST", "/v1/payments", order.encode()))
    outcome = await create_payment(svc, svc.booker, shop.merchant, req, slot, datetime.now(UTC))
    assert outcome.status == 201, outcome


async def drive(svc: Services, shop: Shop, concurrency: int, duration_s: float) -> Window:
    window = Window()
    deadline = time.perf_counter() + duration_s

    async def worker(n: int) -> None:
        turn = 0
        while time.perf_counter() < deadline:
            customer = shop.customers[n][turn % CUSTOMERS_PER_WORKER]
            turn += 1
            started = time.perf_counter()
            try:
                await _pay(svc, shop, customer)
            except Exception as exc:  # counted; the money checks judge what was booked
                window.errors[type(exc).__name__] = window.errors.get(type(exc).__name__, 0) + 1
                await asyncio.sleep(0.001)
                continue
            window.latencies_ms.append((time.perf_counter() - started) * 1000.0)
            window.ok += 1
            shop.paid[customer] = shop.paid.get(customer, 0) + 1

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return window


async def _statements(conn: asyncpg.Connection) -> tuple[float, float] | None:
    """(calls, total execution ms) over every statement, or None without pg_stat_statements."""
    with contextlib.suppress(asyncpg.PostgresError):
        row = await conn.fetchrow("SELECT coalesce(sum(calls), 0) AS calls, coalesce(sum(total_exec_time), 0) AS ms"
                                  " FROM pg_stat_statements")
        return float(row["calls"]), float(row["ms"])
    return None


async def check_money(svc: Services, shop: Shop) -> dict[str, Any]:
    """Buffers drained; trial balance holds; one succeeded payment and one entry per acknowledged payment;
    every wallet debited by exactly its acknowledged payments."""
    drain_s = await wait_drained(svc.pool, shop.hot_accounts)
    problems: list[str] = []
    async with svc.pool.acquire() as conn:
        balance = await trial_balance(conn)
        if not balance.holds_drained:
            problems.append(f"trial balance does not hold: {balance}")
        booked = await conn.fetchval("SELECT count(*) FROM payments WHERE merchant_id = $1 AND status = 'succeeded'",
                                     shop.merchant.id)
        entries = await conn.fetchval(
            "SELECT count(*) FROM journal_entries e JOIN payments p ON p.txn_no = e.txn_no WHERE p.merchant_id = $1",
            shop.merchant.id)
        balances = {r["id"]: int(r["balance"]) for r in await conn.fetch(
            "SELECT id, balance FROM accounts WHERE id = ANY($1::text[])", list(shop.wallets.values()))}
    acknowledged = sum(shop.paid.values())
    if booked != acknowledged or entries != acknowledged:
        problems.append(f"{acknowledged} payments acknowledged, {booked} booked, {entries} journal entries")
    wrong = [c for c, w in shop.wallets.items() if balances[w] != FUNDING_MINOR - AMOUNT_MINOR * shop.paid.get(c, 0)]
    if wrong:
        problems.append(f"{len(wrong)} wallets not debited exactly by their payments, e.g. {wrong[0]}")
    if problems:
        raise MoneyCheckFailed("; ".join(problems))
    return {"payments": acknowledged, "drain_s": round(drain_s, 2)}


async def _trees(svc: Services) -> tuple[ProcessTree | None, ProcessTree | None]:
    async with svc.pool.acquire() as conn:
        pg = postgres_tree(int(await conn.fetchval("SELECT pg_backend_pid()")))
    info = await svc.redis.info("server")
    redis_pid = info.get("process_id") if isinstance(info, dict) else None
    return pg, single_process(int(redis_pid)) if redis_pid else None


def _per_payment_us(cpu_s: float | None, payments: int) -> float | None:
    return round(cpu_s / payments * 1e6, 1) if cpu_s is not None and payments else None


async def run(database_url: str, redis_url: str, concurrency: int, duration_s: float,
              warmup_s: float) -> dict[str, Any]:
    settings = Settings(gateway_in_process=False, webhooks_in_process=False, db_pool_min=concurrency + 4,
                        db_pool_max=concurrency + 4)
    async with services(settings, database_url, redis_url, Role.API) as svc:
        shop = await open_shop(svc, concurrency)
        await drive(svc, shop, concurrency, warmup_s)
        await wait_drained(svc.pool, shop.hot_accounts)
        pg, redis = await _trees(svc)
        async with svc.pool.acquire() as conn:
            stmts_before = await _statements(conn)
        before = (pg.cpu_s() if pg else None, redis.cpu_s() if redis else None, own_cpu_s(), time.perf_counter())
        window = await drive(svc, shop, concurrency, duration_s)
        # The window's hot legs are flushed before CPU is read again: flushing them is part of their cost.
        await wait_drained(svc.pool, shop.hot_accounts)
        after = (pg.cpu_s() if pg else None, redis.cpu_s() if redis else None, own_cpu_s(), time.perf_counter())
        async with svc.pool.acquire() as conn:
            stmts_after = await _statements(conn)
        money = await check_money(svc, shop)
    ordered = sorted(window.latencies_ms)
    pg_s = after[0] - before[0] if after[0] is not None and before[0] is not None else None
    redis_s = after[1] - before[1] if after[1] is not None and before[1] is not None else None
    out: dict[str, Any] = {
        "scenario": "per-payment", "concurrency": concurrency, "duration_s": duration_s,
        "payments": window.ok, "errors": window.errors,
        "payments_per_s": round(window.ok / duration_s, 1),
        "p50_ms": round(percentile(ordered, 50), 2), "p99_ms": round(percentile(ordered, 99), 2),
        "pg_cpu_us_per_payment": _per_payment_us(pg_s, window.ok),
        "redis_cpu_us_per_payment": _per_payment_us(redis_s, window.ok),
        "bench_cpu_us_per_payment": _per_payment_us(after[2] - before[2], window.ok),
        "drain_after_window_s": round(after[3] - before[3] - duration_s, 2),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    if stmts_before is not None and stmts_after is not None and window.ok:
        out["pg_statements_per_payment"] = round((stmts_after[0] - stmts_before[0]) / window.ok, 2)
        out["pg_exec_us_per_payment"] = round((stmts_after[1] - stmts_before[1]) * 1000 / window.ok, 1)
    out["money_checks"] = "ok" if money["payments"] >= window.ok else "FAILED"
    return out


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    async with fresh_servers(args.database_url, args.redis_url) as servers:
        return await run(servers.database_url, servers.redis_url, args.concurrency, args.duration, args.warmup)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.per_payment", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--concurrency", type=int, default=32, help="concurrent payers (default 32)")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds (default 10)")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first (default 3)")
    p.add_argument("--database-url", default=os.environ.get("PAYENGINE_DATABASE_URL", ""))
    p.add_argument("--redis-url", default=os.environ.get("PAYENGINE_REDIS_URL", ""))
    args = p.parse_args(argv)
    try:
        result = uvloop.run(_main(args))
    except MoneyCheckFailed as exc:
        print(f"money check failed: {exc}", file=sys.stderr)
        print(json.dumps({"scenario": "per-payment", "money_checks": "FAILED", "failed": str(exc)}))
        return 1
    print(json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
