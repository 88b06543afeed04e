"""Payouts through HTTP against the real bank simulator: success, failure, webhooks' outbox, idempotency."""

from __future__ import annotations

from engine.payouts.checks import check_payout_money, frozen_mismatches
from tests.payouts.conftest import World, payout_body


async def test_customer_payout_freezes_then_settles(world: World) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 10_000)
    created = await client.create_payout(payout_body(3_000, customer_id=customer))
    assert created.status == 201, created.body
    payout = created.body
    assert payout["status"] in ("pending", "processing") and payout["destination"]["number_masked"].endswith("1111")
    assert "4111111111111111" not in str(payout)
    assert await world.balance(customer, "customer_wallet") == 7_000  # frozen at once, not spendable
    done = await world.wait_payout(client, payout["id"])
    assert done["status"] == "succeeded", done
    assert done["channel_payout_no"]
    assert await world.balance(customer, "customer_wallet") == 7_000
    assert await world.balance(customer, "customer_frozen") == 0
    assert await world.entries(payout["id"]) == ["PAYOUT_FREEZE", "PAYOUT_SETTLE"]
    async with world.pool.acquire() as conn:
        events = await conn.fetch("SELECT type FROM outbox_events WHERE object_id = $1", payout["id"])
        assert [e["type"] for e in events] == ["payout.succeeded"]
        assert (await check_payout_money(conn)).holds


async def test_failed_payout_unfreezes(world: World) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 5_000)
    # The simulator fails payouts to numbers ending in 000000 with ACCOUNT_INVALID after accepting them.
    body = payout_body(2_000, customer_id=customer,
                       destination={"kind": "bank_account", "number": "6222021000000", "holder_name": "Han Meimei"})
    created = await client.create_payout(body)
    assert created.status == 201, created.body
    done = await world.wait_payout(client, created.body["id"])
    assert done["status"] == "failed" and done["failure_code"] == "ACCOUNT_INVALID", done
    assert await world.balance(customer, "customer_wallet") == 5_000
    assert await world.balance(customer, "customer_frozen") == 0
    assert await world.entries(done["id"]) == ["PAYOUT_FREEZE", "PAYOUT_UNFREEZE"]
    async with world.pool.acquire() as conn:
        types = [r["type"] for r in await conn.fetch("SELECT type FROM outbox_events WHERE object_id = $1",
                                                     done["id"])]
        assert types == ["payout.failed"]
        assert not await frozen_mismatches(conn)


async def test_merchant_payout_from_available_balance(world: World) -> None:
    client = await world.merchant()
    await world.fund_merchant_available(client.merchant_id, 50_000)
    body = payout_body(20_000, source="merchant",
                       destination={"kind": "bank_account", "number": "6222021234567", "holder_name": "Shop Ltd",
                                    "bank_code": "ICBC"})
    created = await client.create_payout(body)
    assert created.status == 201, created.body
    assert await world.balance(client.merchant_id, "merchant_available") == 30_000
    assert await world.balance(client.merchant_id, "merchant_frozen") == 20_000
    done = await world.wait_payout(client, created.body["id"])
    assert done["status"] == "succeeded", done
    assert await world.balance(client.merchant_id, "merchant_frozen") == 0
    accounts = await client.accounts()
    roles = {a["role"]: a["balance"] for a in accounts.body["data"] if a["currency"] == "CNY"}
    assert roles["merchant_available"] == 30_000 and roles["merchant_frozen"] == 0


async def test_retry_with_same_key_freezes_once(world: World) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 1_000)
    body = payout_body(600, customer_id=customer)
    first = await client.create_payout(body, idempotency_key="k-" + body["merchant_payout_no"])
    again = await client.create_payout(body, idempotency_key="k-" + body["merchant_payout_no"])
    assert first.status == again.status == 201 and again.replayed and again.body["id"] == first.body["id"]
    other_key = await client.create_payout(body)
    assert other_key.status == 409 and other_key.error_code == "duplicate_order", other_key.body
    assert await world.balance(customer, "customer_wallet") == 400
    await world.wait_payout(client, first.body["id"])


async def test_openapi_publishes_the_payout_endpoints(world: World) -> None:
    async with world.http.get(world.url + "/openapi.json") as r:
        assert r.status == 200
        doc = await r.json()
    assert {"/v1/payouts", "/v1/payouts/{id}"} <= set(doc["paths"])
    assert "post" in doc["paths"]["/v1/payouts"] and "get" in doc["paths"]["/v1/payouts/{id}"]
    paths = doc["paths"]
    for path, methods in (("/admin/payouts", {"get"}), ("/admin/payouts/{id}", {"get"}),
                          ("/admin/payouts/{id}/resolve", {"post"}), ("/admin/payouts/{id}/controls", {"get"})):
        assert set(paths[path]) == methods, path
        assert all(op["security"] == [{"adminToken": []}] for op in paths[path].values()), path
    assert "held" in {p["name"] for p in paths["/admin/payouts"]["get"]["parameters"]}
    resolve = paths["/admin/payouts/{id}/resolve"]["post"]
    assert resolve["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ResolvePayout")
    assert {"200", "400", "401", "404", "409"} <= set(resolve["responses"])
    action = doc["components"]["schemas"]["ResolvePayout"]["properties"]["action"]
    assert set(action["enum"]) == {"retry", "fail", "succeed"}


async def test_customer_view_shows_the_frozen_amount_while_a_payout_is_open(world: World) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 10_000)
    await world.set_faults(payout_settle_ms=600_000)  # the channel holds it 'processing'
    try:
        created = await client.create_payout(payout_body(2_500, customer_id=customer))
        assert created.status == 201, created.body
        payout = await world.wait_payout(client, created.body["id"], lambda p: p["status"] == "processing")
        view = (await client.get_customer(customer)).body
        assert (view["balance"], view["frozen"]) == (7_500, 2_500)
        async with world.http.post(f"{world.bank.url}/sim/admin/payouts/{payout['txn_no']}/settle",
                                   json={"status": "FAIL"}) as r:
            assert r.status == 200, await r.text()
    finally:
        await world.set_faults()
    await world.wait_payout(client, payout["id"], lambda p: p["status"] == "failed")
    view = (await client.get_customer(customer)).body
    assert (view["balance"], view["frozen"]) == (10_000, 0)
