"""Transfers through real HTTP: customer to customer, cash-back, refusals that book nothing, idempotency."""

from __future__ import annotations

import asyncpg

from tests.api.conftest import Api
from tests.transfers.conftest import c2c, cashback, fund_available, money_of


async def _legs(pool: asyncpg.Pool, txn_no: str) -> tuple[str, list[tuple[str, str, int]]]:
    async with pool.acquire() as conn:
        code = await conn.fetchval("SELECT txn_code FROM journal_entries WHERE txn_no = $1", txn_no)
        legs = await conn.fetch("SELECT account_id, side, amount FROM journal_legs WHERE txn_no = $1 ORDER BY leg_no",
                                txn_no)
    return code, [(r["account_id"], r["side"], r["amount"]) for r in legs]


async def test_customer_transfer_moves_wallet_money_books_transfer_c2c_and_emits_an_event(
        api: Api, pool: asyncpg.Pool) -> None:
    client = await api.merchant()
    alice = await api.funded_customer(client, 10_000)
    bob = await api.funded_customer(client, 0)
    sent = await client.create_transfer(c2c(alice, bob, 2_500, description="rent", metadata={"k": "v"}))
    assert sent.status == 201, sent.body
    t = sent.body
    assert t["id"].startswith("tr_") and t["object"] == "transfer" and t["status"] == "succeeded"
    assert (t["source"], t["from_customer_id"], t["to_customer_id"]) == ("customer", alice, bob)
    assert (t["amount"], t["currency"], t["description"], t["metadata"]) == (2_500, "CNY", "rent", {"k": "v"})
    assert (await client.get_customer(alice)).body["balance"] == 7_500
    assert (await client.get_customer(bob)).body["balance"] == 2_500
    wallets = {c: (await client.get_customer(c)).body["wallet_account_id"] for c in (alice, bob)}
    code, legs = await _legs(pool, t["txn_no"])
    assert code == "TRANSFER_C2C"
    assert legs == [(wallets[alice], "D", 2_500), (wallets[bob], "C", 2_500)]
    async with pool.acquire() as conn:
        event = await conn.fetchrow("SELECT type, merchant_id, payload::text FROM outbox_events WHERE object_id = $1",
                                    t["id"])
    assert event["type"] == "transfer.succeeded" and event["merchant_id"] == client.merchant_id
    fetched = await client.get_transfer(t["id"])
    assert fetched.status == 200 and fetched.body == t


async def test_cashback_pays_a_customer_from_the_merchant_available_balance(api: Api, pool: asyncpg.Pool) -> None:
    client = await api.merchant(fee_bps=0)
    available = await fund_available(api, pool, client, 3_000)
    carol = await api.funded_customer(client, 0)
    paid = await client.create_transfer(cashback(carol, 1_200))
    assert paid.status == 201, paid.body
    assert paid.body["source"] == "merchant" and paid.body["from_customer_id"] is None
    code, legs = await _legs(pool, paid.body["txn_no"])
    carol_wallet = (await client.get_customer(carol)).body["wallet_account_id"]
    assert code == "CASHBACK" and legs == [(available, "D", 1_200), (carol_wallet, "C", 1_200)]
    assert (await client.account(available)).body["balance"] == 1_800
    assert (await client.get_customer(carol)).body["balance"] == 1_200


async def test_transfer_refused_for_insufficient_funds_books_nothing_and_the_key_replays_the_refusal(
        api: Api, pool: asyncpg.Pool) -> None:
    client = await api.merchant()
    alice = await api.funded_customer(client, 500)
    bob = await api.funded_customer(client, 0)
    before = await money_of(pool, client.merchant_id, [alice, bob])
    body = c2c(alice, bob, 501)
    refused = await client.create_transfer(body, idempotency_key="k-poor")
    assert refused.status == 402 and refused.error_code == "insufficient_funds", refused.body
    assert refused.body["error"]["type"] == "payment_error"
    assert await money_of(pool, client.merchant_id, [alice, bob]) == before
    again = await client.create_transfer(body, idempotency_key="k-poor")
    assert again.status == 402 and again.replayed and again.body == refused.body
    assert (await client.create_transfer(c2c(alice, bob, 500))).status == 201  # exactly the balance is fine


async def test_cashback_beyond_the_available_balance_or_without_one_is_402_and_books_nothing(
        api: Api, pool: asyncpg.Pool) -> None:
    client = await api.merchant(fee_bps=0)
    dave = await api.funded_customer(client, 0)
    before = await money_of(pool, client.merchant_id, [dave])
    never_settled = await client.create_transfer(cashback(dave, 1))
    assert never_settled.status == 402 and never_settled.error_code == "insufficient_funds", never_settled.body
    assert await money_of(pool, client.merchant_id, [dave]) == before
    await fund_available(api, pool, client, 700)
    before = await money_of(pool, client.merchant_id, [dave])
    too_much = await client.create_transfer(cashback(dave, 701))
    assert too_much.status == 402 and too_much.error_code == "insufficient_funds"
    assert await money_of(pool, client.merchant_id, [dave]) == before


async def test_idempotent_replay_returns_the_same_transfer_and_books_once(api: Api, pool: asyncpg.Pool) -> None:
    client = await api.merchant()
    alice = await api.funded_customer(client, 1_000)
    bob = await api.funded_customer(client, 0)
    body = c2c(alice, bob, 300)
    first = await client.create_transfer(body, idempotency_key="k-once")
    replay = await client.create_transfer(body, idempotency_key="k-once")
    assert first.status == replay.status == 201 and replay.replayed and replay.body == first.body
    other_body = await client.create_transfer({**body, "amount": 301}, idempotency_key="k-once")
    assert other_body.status == 422 and other_body.error_code == "idempotency_key_reused"
    # The transfer_no is unique per merchant on its own: a new key cannot book the same transfer again.
    new_key = await client.create_transfer(body, idempotency_key="k-other")
    assert new_key.status == 409 and new_key.error_code == "duplicate_order"
    assert new_key.body["error"]["existing_id"] == first.body["id"]
    assert new_key.body["error"]["param"] == "transfer_no"
    async with pool.acquire() as conn:
        booked = await conn.fetchval("SELECT count(*) FROM journal_entries WHERE ref = $1", first.body["id"])
        rows = await conn.fetchval("SELECT count(*) FROM transfers WHERE merchant_id = $1", client.merchant_id)
    assert booked == 1 and rows == 1
    assert (await client.get_customer(alice)).body["balance"] == 700


async def test_list_transfers_newest_first_filtered_by_customer_and_transfer_no(api: Api) -> None:
    client = await api.merchant()
    alice = await api.funded_customer(client, 1_000)
    bob = await api.funded_customer(client, 0)
    carol = await api.funded_customer(client, 0)
    ids = [(await client.create_transfer(c2c(alice, payee, 10))).body["id"] for payee in (bob, carol, bob)]
    page = await client.list_transfers("limit=2")
    assert page.status == 200 and [t["id"] for t in page.body["data"]] == ids[::-1][:2] and page.body["has_more"]
    rest = await client.list_transfers(f"limit=2&starting_after={ids[1]}")
    assert [t["id"] for t in rest.body["data"]] == [ids[0]] and not rest.body["has_more"]
    to_carol = await client.list_transfers(f"customer_id={carol}")
    assert [t["id"] for t in to_carol.body["data"]] == [ids[1]]
    from_alice = await client.list_transfers(f"customer_id={alice}")
    assert len(from_alice.body["data"]) == 3
    one = (await client.get_transfer(ids[2])).body["transfer_no"]
    by_no = await client.list_transfers(f"transfer_no={one}")
    assert [t["id"] for t in by_no.body["data"]] == [ids[2]]
