"""Crash in the middle of day-end and of settlement: the CLI runs in a subprocess that stops at a chosen
step (PAYENGINE_DAYEND_PAUSE_AT), is SIGKILLed there, and a rerun reaches the same end state."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest

from engine.client import PayEngineClient
from engine.settlement.store import due_groups
from tests.conftest import Servers
from tests.dayend.cli import run_cli
from tests.dayend.conftest import Db
from tests.dayend.world import World, bounded, new_ref, running_world

pytestmark = pytest.mark.slow  # subprocesses started and killed: ~15-40 s on a loaded 2-core machine


@pytest.fixture(scope="module")
async def world(servers: Servers, db: Db) -> AsyncIterator[World]:
    async with running_world(db.url, servers.redis_url, db.pool) as w:
        yield w


async def _some_payments(w: World, client: PayEngineClient, n: int) -> list[dict[str, Any]]:
    customer = (await client.create_customer(new_ref("cus"))).body["id"]
    assert (await client.topup(customer, 10_000_000, new_ref("tu"))).status == 201

    async def pay(i: int) -> dict[str, Any]:
        r = await client.create_payment({"merchant_order_no": new_ref("o"), "amount": 1_000 + i, "currency": "CNY",
                                         "method": "wallet", "customer_id": customer})
        assert r.status == 201, r.body
        body: dict[str, Any] = r.body
        return body
    return await bounded(4, [lambda i=i: pay(i) for i in range(n)])


async def _state(w: World, day: date) -> dict[str, Any]:
    async with w.pool.acquire() as conn:
        run = await conn.fetchrow("SELECT step, status FROM day_ends WHERE accounting_date = $1", day)
        return {"open": await conn.fetchval("SELECT open_date FROM accounting_calendar"),
                "run": dict(run) if run else None,
                "snapshots": await conn.fetchval("SELECT count(*) FROM daily_balances WHERE accounting_date = $1",
                                                 day)}


async def test_day_end_killed_mid_way_resumes_to_the_same_end_state(world: World) -> None:
    w = world
    client = await w.merchant(50, 1)
    await _some_payments(w, client, 30)
    day = (await _state(w, date.today()))["open"]

    code, _ = await run_cli(w, "day-end", "--force", "--date", day.isoformat(), pause_at="balance.uncommitted")
    assert code == -signal.SIGKILL
    # Switch and drain committed; the snapshot transaction died with the process.
    assert await _state(w, day) == {"open": day + timedelta(days=1), "run": {"step": "balance", "status": "running"},
                                    "snapshots": 0}
    code, out = await run_cli(w, "day-end", "--force")  # no date: resumes the unfinished day-end
    assert code == 0, out
    async with w.pool.acquire() as conn:
        accounts = await conn.fetchval("SELECT count(*) FROM accounts")
        legs = await conn.fetchval("SELECT count(*) FROM journal_legs WHERE accounting_date = $1", day)
        report = await conn.fetchval("SELECT report::text FROM day_ends WHERE accounting_date = $1", day)
        snapshot = await conn.fetch("SELECT * FROM daily_balances WHERE accounting_date = $1 ORDER BY account_id", day)
    assert '"trial_balance": "ok"' in report and f'"legs": {legs}' in report
    assert await _state(w, day) == {"open": day + timedelta(days=1), "run": {"step": "done", "status": "done"},
                                    "snapshots": accounts}
    code, out = await run_cli(w, "day-end", "--force", "--date", day.isoformat())  # once more: nothing changes
    assert code == 0, out
    async with w.pool.acquire() as conn:
        again = await conn.fetch("SELECT * FROM daily_balances WHERE accounting_date = $1 ORDER BY account_id", day)
    assert again == snapshot and (await _state(w, day))["open"] == day + timedelta(days=1)

    # The next day, killed right after the switch committed (waiting for the buffers).
    next_day = day + timedelta(days=1)
    await _some_payments(w, client, 10)
    code, _ = await run_cli(w, "day-end", "--force", "--date", next_day.isoformat(), pause_at="drain")
    assert (await _state(w, next_day))["run"] == {"step": "drain", "status": "running"}
    code, out = await run_cli(w, "day-end", "--force", "--date", next_day.isoformat())
    assert code == 0, out
    async with w.pool.acquire() as conn:
        accounts = await conn.fetchval("SELECT count(*) FROM accounts")
    assert await _state(w, next_day) == {"open": next_day + timedelta(days=1),
                                         "run": {"step": "done", "status": "done"}, "snapshots": accounts}


async def test_settlement_killed_mid_way_settles_each_batch_once(world: World) -> None:
    w = world
    clients = [await w.merchant(80, 3) for _ in range(3)]
    paid = {}
    for client in clients:
        status, _ = await w.admin("PUT", f"/admin/merchants/{client.merchant_id}/settlement-cycle", {"cycle_days": 0})
        assert status == 200
        paid[client.merchant_id] = await _some_payments(w, client, 12)
    status, closed = await w.admin("POST", "/admin/day-end", {"force": True})
    assert status == 200, closed
    day = closed["accounting_date"]
    expected = {m: sum(p["amount"] - p["fee"] for p in ps) for m, ps in paid.items()}

    settle_date = date.fromisoformat(day)
    async with w.pool.acquire() as conn:  # other tests' merchants in this database may be due too
        due = len(await due_groups(conn, settle_date, None))
    assert due >= len(expected)

    async def batches() -> dict[str, int]:
        async with w.pool.acquire() as conn:
            rows = await conn.fetch("SELECT merchant_id, net FROM settlement_batches WHERE settle_date = $1",
                                    settle_date)
        return {r["merchant_id"]: r["net"] for r in rows}

    await run_cli(w, "settle", "--date", day, pause_at="settle.between")  # first batch committed, then killed
    first = await batches()
    assert len(first) == 1
    await run_cli(w, "settle", "--date", day, pause_at="settle.uncommitted")  # killed inside the next batch
    assert await batches() == first
    code, out = await run_cli(w, "settle", "--date", day)
    assert code == 0, out
    settled = await batches()
    assert len(settled) == due and {m: settled[m] for m in expected} == expected
    code, out = await run_cli(w, "settle", "--date", day)
    assert code == 0 and '"created": 0' in out
    async with w.pool.acquire() as conn:
        available = await conn.fetch("SELECT owner_id, balance FROM accounts WHERE role = 'merchant_available'"
                                     " AND owner_id = ANY($1::text[])", list(expected))
        entries = await conn.fetchval("SELECT count(*) FROM journal_entries e JOIN settlement_batches b"
                                      " ON b.txn_no = e.txn_no WHERE b.merchant_id = ANY($1::text[])", list(expected))
    assert {r["owner_id"]: r["balance"] for r in available} == expected and entries == 3
