"""The exception desk over real HTTP: proposals, decisions, and the ledger reads that check what they booked."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from engine.client import PayEngineClient
from tests.api.conftest import AdminHttp, Api, Reply


def who() -> str:
    """An operator name of its own per test (the audit trail is read back by it)."""
    return "op." + uuid.uuid4().hex[:10]


@dataclass(frozen=True)
class DeskHttp(AdminHttp):
    async def propose(self, code: str, amount: int, operator: str, accounts: dict[str, str] | None = None,
                      currency: str = "CNY", **extra: Any) -> Reply:
        body = {"code": code, "amount": amount, "currency": currency, "reason": "test adjustment",
                "operator": operator, "accounts": accounts or {}, "evidence": "ticket-1", **extra}
        return await self.call("POST", "/admin/adjustments", body)

    async def propose_reversal(self, txn_no: str, operator: str, **extra: Any) -> Reply:
        return await self.call("POST", "/admin/reversals", {"txn_no": txn_no, "reason": "booked in error",
                                                            "operator": operator, **extra})

    async def decide(self, proposal_id: str, verb: str, operator: str, kind: str = "adjustments") -> Reply:
        return await self.call("POST", f"/admin/{kind}/{proposal_id}/{verb}", {"operator": operator, "note": "ok"})


async def wallet_of(api: Api, client: PayEngineClient, amount: int, currency: str = "CNY") -> tuple[str, str]:
    """A customer (funded with ``amount``) and its wallet account."""
    customer = await api.funded_customer(client, amount, currency)
    body = (await client.get_customer(customer)).body
    return customer, body["wallet_account_id"]


async def account_of(client: PayEngineClient, role: str, currency: str = "CNY") -> dict[str, Any]:
    listed = await client.accounts()
    assert listed.status == 200, listed.body
    found: dict[str, Any] = next(a for a in listed.body["data"] if a["role"] == role and a["currency"] == currency)
    return found


async def entries_for(pool: asyncpg.Pool, proposal_id: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(await conn.fetch("SELECT txn_no, txn_code, ref FROM journal_entries WHERE ref = $1",
                                     proposal_id))


async def balance(pool: asyncpg.Pool, account_id: str) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", account_id))


async def legs_match_balance(pool: asyncpg.Pool, account_id: str) -> bool:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT a.balance, (SELECT coalesce(sum(delta), 0) FROM journal_legs l WHERE l.account_id = a.id"
            " AND l.status = 'applied') AS legs FROM accounts a WHERE a.id = $1", account_id)
    return bool(row["balance"] == row["legs"])


async def flushed(pool: asyncpg.Pool, txn_no: str, timeout_s: float = 20.0) -> None:
    """Wait until the buffer has applied every leg of ``txn_no``."""
    deadline = time.monotonic() + timeout_s
    while True:
        async with pool.acquire() as conn:
            left = await conn.fetchval("SELECT count(*) FROM journal_legs WHERE txn_no = $1 AND status = 'buffered'",
                                       txn_no)
        if left == 0:
            return
        assert time.monotonic() < deadline, f"{txn_no} still has {left} buffered legs"
        await asyncio.sleep(0.05)


async def audit_actions(api: Api, kind: str, subject_id: str) -> list[tuple[str, str]]:
    reply = await AdminHttp(api).call("GET", f"/admin/audit?subject_kind={kind}&subject_id={subject_id}")
    assert reply.status == 200, reply.body
    return [(r["action"], r["operator"]) for r in reversed(reply.body["data"])]


async def desk_rows(pool: asyncpg.Pool) -> tuple[int, int, int]:
    """Proposals, audit rows and journal entries: "nothing written" checks compare these."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT (SELECT count(*) FROM desk_proposals) AS p, (SELECT count(*) FROM audit_log)"
                                  " AS a, (SELECT count(*) FROM journal_entries) AS e")
    return (row["p"], row["a"], row["e"])
