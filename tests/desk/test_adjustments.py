"""Adjustments (调账): proposed by one operator, booked only when a different one approves, exactly once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest

from accounts.store import trial_balance
from engine.bootstrap import create_app
from tests.api.conftest import Api
from tests.conftest import Servers
from tests.desk.desk import (
    DeskHttp,
    account_of,
    audit_actions,
    balance,
    entries_for,
    flushed,
    legs_match_balance,
    wallet_of,
    who,
)
from tests.serving import serving


async def test_adjustment_books_once_when_a_second_operator_approves(api: Api, pool: asyncpg.Pool) -> None:
    desk, client = DeskHttp(api), await api.merchant()
    customer, wallet = await wallet_of(api, client, 0)
    alice, bob = who(), who()
    proposed = await desk.propose("ADJ_CUSTOMER_COMPENSATION", 500, alice, {"customer_wallet": wallet})
    assert proposed.status == 201, proposed.body
    p = proposed.body
    assert (p["status"], p["proposed_by"], p["txn_no"], p["accounts"]["customer_wallet"]) == (
        "proposed", alice, None, wallet)
    assert p["accounts"]["adjustments"].startswith("acct_")  # the platform's loss account, filled in
    assert await balance(pool, wallet) == 0 and await entries_for(pool, p["id"]) == []

    own = await desk.decide(p["id"], "approve", alice)
    assert (own.status, own.code) == (403, "four_eyes_required"), own.body
    assert await balance(pool, wallet) == 0

    approved = await desk.decide(p["id"], "approve", bob)
    assert approved.status == 200, approved.body
    assert (approved.body["status"], approved.body["decided_by"]) == ("approved", bob)
    assert await balance(pool, wallet) == 500
    [entry] = await entries_for(pool, p["id"])
    assert (entry["txn_no"], entry["txn_code"]) == (approved.body["txn_no"], "ADJ_CUSTOMER_COMPENSATION")
    assert (await client.get_customer(customer)).body["balance"] == 500

    again = await desk.decide(p["id"], "approve", who())
    assert (again.status, again.code) == (409, "proposal_not_open"), again.body
    late_reject = await desk.decide(p["id"], "reject", who())
    assert (late_reject.status, late_reject.code) == (409, "proposal_not_open"), late_reject.body
    assert len(await entries_for(pool, p["id"])) == 1 and await balance(pool, wallet) == 500
    assert await audit_actions(api, "adjustment", p["id"]) == [("propose", alice), ("approve", bob)]
    shown = await desk.call("GET", f"/admin/adjustments/{p['id']}")
    assert shown.status == 200 and shown.body == approved.body
    listed = await desk.call("GET", "/admin/adjustments?status=approved&limit=100")
    assert listed.status == 200 and p["id"] in [x["id"] for x in listed.body["data"]]


async def test_concurrent_approvals_book_exactly_once(api: Api, pool: asyncpg.Pool) -> None:
    desk, client = DeskHttp(api), await api.merchant()
    _, wallet = await wallet_of(api, client, 0)
    p = (await desk.propose("ADJ_CUSTOMER_COMPENSATION", 321, who(), {"customer_wallet": wallet})).body
    replies = await asyncio.gather(*(desk.decide(p["id"], "approve", who()) for _ in range(6)))
    assert sorted(r.status for r in replies) == [200, 409, 409, 409, 409, 409], [r.body for r in replies]
    assert {r.code for r in replies if r.status == 409} == {"proposal_not_open"}
    assert len(await entries_for(pool, p["id"])) == 1
    assert await balance(pool, wallet) == 321


async def test_a_rejected_proposal_books_nothing_and_cannot_be_approved(api: Api, pool: asyncpg.Pool) -> None:
    desk, client = DeskHttp(api), await api.merchant()
    _, wallet = await wallet_of(api, client, 0)
    alice, bob = who(), who()
    p = (await desk.propose("ADJ_CUSTOMER_COMPENSATION", 900, alice, {"customer_wallet": wallet})).body
    own = await desk.decide(p["id"], "reject", alice)
    assert (own.status, own.code) == (403, "four_eyes_required"), own.body
    rejected = await desk.decide(p["id"], "reject", bob)
    assert rejected.status == 200 and rejected.body["status"] == "rejected", rejected.body
    approved = await desk.decide(p["id"], "approve", who())
    assert (approved.status, approved.code) == (409, "proposal_not_open"), approved.body
    assert await entries_for(pool, p["id"]) == [] and await balance(pool, wallet) == 0
    assert await audit_actions(api, "adjustment", p["id"]) == [("propose", alice), ("reject", bob)]


@pytest.fixture
async def short_lived(servers: Servers, api: Api) -> AsyncIterator[DeskHttp]:
    """A second API process on the same servers whose proposals expire after one second (swept every second)."""
    settings = api.settings.replace(desk_proposal_ttl_s=1, desk_expiry_interval_s=1)
    app = create_app(settings, servers.database_url, servers.redis_url)
    async with serving(app) as served, aiohttp.ClientSession() as session:
        yield DeskHttp(Api(served.url, api.settings, session, app))


async def _status(pool: asyncpg.Pool, proposal_id: str) -> str:
    async with pool.acquire() as conn:
        return str(await conn.fetchval("SELECT status FROM desk_proposals WHERE id = $1", proposal_id))


async def test_an_expired_proposal_books_nothing(api: Api, pool: asyncpg.Pool, short_lived: DeskHttp) -> None:
    client = await api.merchant()
    _, wallet = await wallet_of(api, client, 0)
    alice = who()
    p = (await short_lived.propose("ADJ_CUSTOMER_COMPENSATION", 700, alice, {"customer_wallet": wallet})).body
    # The process's expiry loop expires it with nobody asking (no desk request in between).
    deadline = time.monotonic() + 20
    while await _status(pool, p["id"]) == "proposed":
        assert time.monotonic() < deadline, "never expired"
        await asyncio.sleep(0.2)
    assert await _status(pool, p["id"]) == "expired"
    approved = await short_lived.decide(p["id"], "approve", who())
    assert (approved.status, approved.code) == (409, "proposal_not_open"), approved.body
    shown = await short_lived.call("GET", f"/admin/adjustments/{p['id']}")
    assert shown.body["status"] == "expired" and shown.body["decided_by"] is None
    assert await entries_for(pool, p["id"]) == [] and await balance(pool, wallet) == 0
    assert await audit_actions(api, "adjustment", p["id"]) == [("propose", alice), ("expire", "system")]


async def test_adjustments_on_a_hot_account_go_through_the_buffer(api: Api, pool: asyncpg.Pool) -> None:
    desk, client = DeskHttp(api), await api.merchant(hot=True)
    pending = await account_of(client, "merchant_pending")
    assert pending["hot"], pending
    topup = (await desk.propose("ADJ_MERCHANT_TOPUP", 700, who(), {"merchant_pending": pending["id"]})).body
    booked = await desk.decide(topup["id"], "approve", who())
    assert booked.status == 200, booked.body
    async with pool.acquire() as conn:
        leg = await conn.fetchrow("SELECT status, seq FROM journal_legs WHERE txn_no = $1 AND account_id = $2",
                                  booked.body["txn_no"], pending["id"])
    assert leg is not None  # written buffered, applied by the flusher (or already applied by it)
    await flushed(pool, booked.body["txn_no"])
    assert await balance(pool, pending["id"]) == 700 and await legs_match_balance(pool, pending["id"])

    # More than the hot account's projected balance: the buffer's reservation refuses, nothing is booked.
    too_much = (await desk.propose("ADJ_MERCHANT_ARREAR", 701, who(), {"merchant_pending": pending["id"]})).body
    refused = await desk.decide(too_much["id"], "approve", who())
    assert (refused.status, refused.code) == (402, "insufficient_funds"), refused.body
    still = await desk.call("GET", f"/admin/adjustments/{too_much['id']}")
    assert still.body["status"] == "proposed" and await entries_for(pool, too_much["id"]) == []

    arrear = (await desk.propose("ADJ_MERCHANT_ARREAR", 300, who(), {"merchant_pending": pending["id"]})).body
    charged = await desk.decide(arrear["id"], "approve", who())
    assert charged.status == 200, charged.body
    await flushed(pool, charged.body["txn_no"])
    assert await balance(pool, pending["id"]) == 400 and await legs_match_balance(pool, pending["id"])
    account = (await client.account(pending["id"])).body
    assert (account["balance"], account["pending"]) == (400, 0)
    # The merchant's statement shows each adjustment under its own code; its entry's ref is the proposal.
    lines = (await client.statement(pending["id"])).body["data"]
    assert [(x["txn_no"], x["txn_code"], x["delta"]) for x in lines] == [
        (booked.body["txn_no"], "ADJ_MERCHANT_TOPUP", 700), (charged.body["txn_no"], "ADJ_MERCHANT_ARREAR", -300)]
    assert [e["txn_no"] for e in await entries_for(pool, arrear["id"])] == [charged.body["txn_no"]]
    async with pool.acquire() as conn:
        assert (await trial_balance(conn)).holds
