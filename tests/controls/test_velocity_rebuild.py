"""The velocity log (N payments in T seconds per customer) lives in Redis; when Redis loses it, it is rebuilt
from the PostgreSQL record (limit_usage) in the same step as the counters, so a burst cannot slip past a
velocity rule after a Redis wipe or restart, and the rebuilt log counts each admission once."""

from __future__ import annotations

from typing import Any

from engine.client import PayEngineClient
from tests.api.conftest import AdminHttp
from tests.controls.conftest import PrivateWorld, pay
from tests.transfers.conftest import c2c


async def _velocity_rule(world: PrivateWorld, client: PayEngineClient, max_attempts: int,
                         methods: tuple[str, ...] = ()) -> dict[str, Any]:
    reply = await AdminHttp(world.api).call("POST", "/admin/risk/rules", {
        "name": f"{max_attempts} per 10 minutes", "kind": "velocity", "action": "deny",
        "merchant_id": client.merchant_id, "methods": list(methods),
        "params": {"window_s": 600, "max_attempts": max_attempts}})
    assert reply.status == 201, reply.body
    rule: dict[str, Any] = reply.body
    return rule


async def test_velocity_rule_still_denies_after_redis_is_flushed(private: PrivateWorld) -> None:
    client = await private.api.merchant()
    customer = await private.api.funded_customer(client, 10_000)
    rule = await _velocity_rule(private, client, 3)
    assert [(await pay(client, customer, 100)).status for _ in range(2)] == [201, 201]
    await private.wipe_redis()
    assert (await pay(client, customer, 100)).status == 201  # the two before are counted once, not twice
    await private.wipe_redis()
    denied = await pay(client, customer, 100)
    assert denied.status == 402 and denied.error_code == "risk_declined", denied.body
    assert denied.body["error"]["details"]["rule"] == rule["id"]
    other = await private.api.funded_customer(client, 1_000)
    assert (await pay(client, other, 100)).status == 201  # per customer, also when rebuilt


async def test_velocity_rule_still_denies_after_redis_is_killed_and_restarted_empty(private: PrivateWorld) -> None:
    client = await private.api.merchant()
    customer = await private.api.funded_customer(client, 10_000)
    await _velocity_rule(private, client, 2)
    assert [(await pay(client, customer, 100)).status for _ in range(2)] == [201, 201]
    await private.restart_redis()
    denied = await pay(client, customer, 100)  # the client retries the 503 of the first call on a dead socket
    assert denied.status == 402 and denied.error_code == "risk_declined", denied.body
    assert denied.body["error"]["details"]["kind"] == "velocity"
    balance = await client.get_customer(customer)
    assert balance.body["balance"] == 10_000 - 200, balance.body  # the denied attempt debited nothing


async def test_rebuilt_velocity_logs_count_each_method_for_its_own_rules(private: PrivateWorld) -> None:
    client = await private.api.merchant()
    alice, bob = await private.api.funded_customer(client, 10_000), await private.api.funded_customer(client, 0)
    wallet = await _velocity_rule(private, client, 3, ("wallet",))
    transfers = await _velocity_rule(private, client, 2, ("transfer",))
    assert [(await client.create_transfer(c2c(alice, bob, 100))).status for _ in range(2)] == [201, 201]
    assert [(await pay(client, alice, 100)).status for _ in range(2)] == [201, 201]
    await private.wipe_redis()
    third = await pay(client, alice, 100)  # rebuilds every method's log: 2 wallet payments, not 4 attempts
    assert third.status == 201, third.body
    denied = await client.create_transfer(c2c(alice, bob, 100))  # the transfers' log came back with it
    assert denied.status == 402 and denied.body["error"]["details"]["rule"] == transfers["id"], denied.body
    fourth = await pay(client, alice, 100)
    assert fourth.status == 402 and fourth.body["error"]["details"]["rule"] == wallet["id"], fourth.body
