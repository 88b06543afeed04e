"""Transfers under test: the API app of tests/api (real HTTP, PostgreSQL, Redis) and money helpers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from accounts.model import AccountId, AccountKind, OverdraftRule
from accounts.rules import build_entry
from accounts.store import trial_balance
from engine.client import PayEngineClient
from engine.keys import ACCOUNT, new_id
from engine.merchants.store import ensure_account
from engine.services import SERVICES
from tests.api.conftest import Api, api, order_no

__all__ = ["api"]  # the session app fixture, shared with tests/api


def transfer_no() -> str:
    return "tr-" + uuid.uuid4().hex


def c2c(payer: str, payee: str, amount: int, currency: str = "CNY", **extra: Any) -> dict[str, Any]:
    return {"transfer_no": transfer_no(), "amount": amount, "currency": currency, "source": "customer",
            "from_customer_id": payer, "to_customer_id": payee, **extra}


def cashback(payee: str, amount: int, currency: str = "CNY", **extra: Any) -> dict[str, Any]:
    return {"transfer_no": transfer_no(), "amount": amount, "currency": currency, "source": "merchant",
            "to_customer_id": payee, **extra}


async def fund_available(api: Api, pool: asyncpg.Pool, client: PayEngineClient, amount: int,
                         currency: str = "CNY") -> str:
    """Give a zero-fee merchant ``amount`` of available balance the way money gets there: a customer
    pays it (wallet payment into pending settlement), then a SETTLE entry moves it to available (what
    the settlement run books, without closing the shared accounting day). Returns the account id."""
    payer = await api.funded_customer(client, amount, currency)
    paid = await client.create_payment({"merchant_order_no": order_no(), "amount": amount, "currency": currency,
                                        "method": "wallet", "customer_id": payer})
    assert paid.status == 201 and paid.body["fee"] == 0, paid.body
    async with pool.acquire() as conn:
        pending = await conn.fetchval("SELECT id FROM accounts WHERE owner_id = $1 AND role = 'merchant_pending'"
                                      " AND currency = $2 AND parent_id IS NULL", client.merchant_id, currency)
        available = await ensure_account(conn, client.merchant_id, "merchant_available", currency,
                                         AccountKind.MERCHANT, False, OverdraftRule(), new_id(ACCOUNT))
    now = datetime.now(UTC)
    await api.app[SERVICES].booker.book(build_entry(
        "SETTLE", api.app[SERVICES].txn_nos.next(now), now.date(), currency,
        {"merchant_pending": AccountId(pending), "merchant_available": available}, {"amount": amount}))
    return available


@dataclass(frozen=True)
class Money:
    """What a rejected transfer must leave unchanged: balances of the owners' accounts, their entries."""

    balances: tuple[tuple[str, int], ...]
    legs: int
    transfers: int


async def money_of(pool: asyncpg.Pool, merchant_id: str, owner_ids: list[str]) -> Money:
    async with pool.acquire() as conn:
        tb = await trial_balance(conn)
        assert tb.holds, tb
        rows = await conn.fetch("SELECT id, balance FROM accounts WHERE owner_id = ANY($1::text[]) ORDER BY id",
                                [merchant_id, *owner_ids])
        legs = await conn.fetchval(
            "SELECT count(*) FROM journal_legs l JOIN accounts a ON a.id = l.account_id"
            " WHERE a.owner_id = ANY($1::text[])", [merchant_id, *owner_ids])
        transfers = await conn.fetchval("SELECT count(*) FROM transfers WHERE merchant_id = $1", merchant_id)
    return Money(tuple((r["id"], r["balance"]) for r in rows), legs, transfers)
