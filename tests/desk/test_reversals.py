"""Reversals (冲正): an approved reversal posts the exact mirror of a booked entry as a new entry linked to it,
at most once, never of a mirror, never of an entry still in the buffer, never taking an account below zero."""

from __future__ import annotations

import collections
import uuid

import asyncpg

from accounts.journal import LegDraft, make_entry
from accounts.model import AccountKind, OverdraftMode, Side
from accounts.store import post_entry, trial_balance
from tests.api.conftest import Api
from tests.desk.desk import DeskHttp, audit_actions, balance, desk_rows, entries_for, flushed, wallet_of, who
from tests.factories import new_txn_no, open_test_account, today

Legs = collections.Counter[tuple[str, str, int]]


async def _legs(pool: asyncpg.Pool, txn_no: str) -> Legs:
    """(account the money belongs to, side, amount) of every leg, a split's sub-account counted as its parent."""
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT coalesce(a.parent_id, a.id) AS account, l.side, l.amount FROM journal_legs l"
                                " JOIN accounts a ON a.id = l.account_id WHERE l.txn_no = $1", txn_no)
    return collections.Counter((r["account"], r["side"], r["amount"]) for r in rows)


def _mirrored(legs: Legs) -> Legs:
    return collections.Counter({(a, Side(s).opposite.value, n): k for (a, s, n), k in legs.items()})


async def test_a_reversal_mirrors_every_leg_once(api: Api, pool: asyncpg.Pool) -> None:
    desk, client = DeskHttp(api), await api.merchant()
    customer, wallet = await wallet_of(api, client, 10_000)
    paid = await client.create_payment({"merchant_order_no": "o-" + uuid.uuid4().hex, "amount": 4_000,
                                        "currency": "CNY", "method": "wallet", "customer_id": customer})
    assert paid.status == 201, paid.body
    txn_no = paid.body["txn_no"]
    await flushed(pool, txn_no)
    alice, bob = who(), who()
    proposed = await desk.propose_reversal(txn_no, alice)
    assert proposed.status == 201, proposed.body
    p = proposed.body
    assert (p["kind"], p["code"], p["original_txn_no"], p["amount"], p["currency"]) == (
        "reversal", "PAY_WALLET", txn_no, 8_000, "CNY")  # 4,000 in, 4,000 through transit (net + fee)
    twice = await desk.propose_reversal(txn_no, who())
    assert (twice.status, twice.code) == (409, "entry_already_reversed"), twice.body
    own = await desk.decide(p["id"], "approve", alice, "reversals")
    assert (own.status, own.code) == (403, "four_eyes_required"), own.body

    approved = await desk.decide(p["id"], "approve", bob, "reversals")
    assert approved.status == 200, approved.body
    mirror = approved.body["txn_no"]
    assert await _legs(pool, mirror) == _mirrored(await _legs(pool, txn_no))
    [entry] = await entries_for(pool, p["id"])
    assert (entry["txn_no"], entry["txn_code"]) == (mirror, "REVERSAL")
    async with pool.acquire() as conn:
        link = await conn.fetchrow("SELECT original_txn_no, proposal_id FROM journal_reversals"
                                   " WHERE reversal_txn_no = $1", mirror)
    assert (link["original_txn_no"], link["proposal_id"]) == (txn_no, p["id"])
    await flushed(pool, mirror)
    assert await balance(pool, wallet) == 10_000
    async with pool.acquire() as conn:
        assert (await trial_balance(conn)).holds

    again = await desk.propose_reversal(txn_no, who())
    assert (again.status, again.code) == (409, "entry_already_reversed"), again.body
    of_mirror = await desk.propose_reversal(mirror, who())
    assert (of_mirror.status, of_mirror.code) == (409, "entry_is_reversal"), of_mirror.body
    assert await audit_actions(api, "reversal", p["id"]) == [("propose", alice), ("approve", bob)]


async def test_a_reversal_the_money_was_spent_from_is_refused(api: Api, pool: asyncpg.Pool) -> None:
    desk, client = DeskHttp(api), await api.merchant()
    customer, wallet = await wallet_of(api, client, 0)
    topped = await client.topup(customer, 1_000, "tu-" + uuid.uuid4().hex)
    assert topped.status == 201, topped.body
    spent = await client.create_payment({"merchant_order_no": "o-" + uuid.uuid4().hex, "amount": 800,
                                         "currency": "CNY", "method": "wallet", "customer_id": customer})
    assert spent.status == 201, spent.body
    p = (await desk.propose_reversal(topped.body["txn_no"], who())).body
    before = await desk_rows(pool)
    refused = await desk.decide(p["id"], "approve", who(), "reversals")
    assert (refused.status, refused.code) == (402, "insufficient_funds"), refused.body
    assert await desk_rows(pool) == before and await balance(pool, wallet) == 200
    shown = await desk.call("GET", f"/admin/reversals/{p['id']}")
    assert shown.body["status"] == "proposed"
    # It can still be turned down (and then a new proposal may be made later).
    assert (await desk.decide(p["id"], "reject", who(), "reversals")).status == 200
    assert (await desk.propose_reversal(topped.body["txn_no"], who())).status == 201


async def test_an_entry_still_in_the_buffer_is_not_reversed_yet(api: Api, pool: asyncpg.Pool) -> None:
    desk = DeskHttp(api)
    async with pool.acquire() as conn:
        hot = await open_test_account(conn, "gateway_transit", kind=AccountKind.INTERNAL,
                                      overdraft=OverdraftMode.UNLIMITED, hot=True)
        cold = await open_test_account(conn, "bank_deposits", kind=AccountKind.INTERNAL,
                                       overdraft=OverdraftMode.UNLIMITED)
        txn_no = new_txn_no()
        # Posted without the buffer: its hot leg stays buffered until the recovery sweep's grace has passed.
        posted = await post_entry(conn, make_entry(txn_no, "SWEEP", today(), [
            LegDraft(cold.id, Side.DEBIT, 50, "CNY"), LegDraft(hot.id, Side.CREDIT, 50, "CNY")]))
    assert [leg.status for leg in posted.legs if leg.account_id == hot.id] == ["buffered"]
    refused = await desk.propose_reversal(txn_no, who())
    assert (refused.status, refused.code) == (409, "entry_not_applied"), refused.body
    async with pool.acquire() as conn:
        still = await conn.fetchval("SELECT status FROM journal_legs WHERE txn_no = $1 AND account_id = $2",
                                    txn_no, hot.id)
    assert still == "buffered"  # it really was in the buffer when refused


async def test_bad_reversals_are_refused_and_write_nothing(api: Api, pool: asyncpg.Pool) -> None:
    desk = DeskHttp(api)
    client = await api.merchant()
    customer, _ = await wallet_of(api, client, 0)
    topped = (await client.topup(customer, 100, "tu-" + uuid.uuid4().hex)).body
    before = await desk_rows(pool)
    cases = [
        ({"txn_no": "1" * 32, "reason": "r", "operator": who()}, 404, "resource_missing"),
        ({"txn_no": "12345", "reason": "r", "operator": who()}, 400, "parameter_invalid"),
        ({"txn_no": topped["txn_no"], "reason": "r"}, 400, "parameter_missing"),
        ({"txn_no": topped["txn_no"], "reason": "r", "operator": who(), "accounting_date": "2001-01-01"},
         404, "resource_missing"),
        ({"txn_no": topped["txn_no"], "reason": "", "operator": who()}, 400, "parameter_invalid"),
    ]
    for body, status, code in cases:
        reply = await desk.call("POST", "/admin/reversals", body)
        assert (reply.status, reply.code) == (status, code), (body, reply.body)
    assert await desk_rows(pool) == before
