"""Risk rules through HTTP: each kind and decision, recorded with the payment, changed at run time.

Every rule here is scoped to the test's own merchant (merchant_id), so it never touches other tests.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from prometheus_client import REGISTRY

from engine.client import ApiResult, PayEngineClient
from tests.api.conftest import Api
from tests.controls.conftest import Admin, order_no, pay
from tests.transfers.conftest import c2c


def decisions(controls: dict[str, Any]) -> dict[str, str]:
    return {d["rule"]: d["decision"] for d in controls["decisions"]}


async def test_velocity_denies_the_attempt_past_n_in_the_window(api: Api, admin: Admin) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 10_000)
    rule = await admin.rule(name="3 per minute", kind="velocity", action="deny", merchant_id=client.merchant_id,
                            params={"window_s": 60, "max_attempts": 3})
    paid = [await pay(client, customer, 100) for _ in range(3)]
    assert [p.status for p in paid] == [201, 201, 201]
    denied = await pay(client, customer, 100)
    assert denied.status == 402 and denied.error_code == "risk_declined"
    assert denied.body["error"]["details"]["rule"] == rule["id"]
    assert denied.body["error"]["details"]["kind"] == "velocity"
    controls = await admin.controls_of(paid[0].body["id"])
    assert decisions(controls) == {rule["id"]: "allow"} and controls["review"] is False
    other = await api.funded_customer(client, 1_000)
    assert (await pay(client, other, 100)).status == 201  # per customer


async def test_amount_anomaly_reviews_a_payment_far_above_the_customers_average(api: Api, admin: Admin) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 100_000)
    rule = await admin.rule(name="5x average", kind="amount_anomaly", action="review", merchant_id=client.merchant_id,
                            params={"factor": 5, "basis": "average", "min_history": 3})
    early = await pay(client, customer, 5_000)  # no history yet: allowed, whatever the amount
    assert decisions(await admin.controls_of(early.body["id"]))[rule["id"]] == "allow"
    for _ in range(3):
        assert (await pay(client, customer, 100)).status == 201
    # average (5000 + 300) / 4 = 1325; 5 x 1325 = 6625
    usual = await pay(client, customer, 6_625)
    unusual = await pay(client, customer, 6_626 * 2)
    assert (usual.status, unusual.status) == (201, 201)  # review: allowed, but recorded
    assert decisions(await admin.controls_of(usual.body["id"])) == {rule["id"]: "allow"}
    reviewed = await admin.controls_of(unusual.body["id"])
    assert decisions(reviewed) == {rule["id"]: "review"} and reviewed["review"] is True


async def test_a_payment_refused_for_its_currency_leaves_the_customers_history_alone(api: Api,
                                                                                       admin: Admin) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 100_000)  # a CNY wallet
    rule = await admin.rule(name="2x the largest", kind="amount_anomaly", action="review",
                            merchant_id=client.merchant_id, params={"factor": 2, "basis": "max", "min_history": 1})
    assert (await pay(client, customer, 1_000)).status == 201
    # Admitted by the gate (counted in the USD history), then refused by the booking and given back.
    foreign = await client.create_payment({"merchant_order_no": order_no(), "amount": 1_000_000, "currency": "USD",
                                           "method": "wallet", "customer_id": customer})
    assert foreign.status == 400, foreign.body
    unusual = await pay(client, customer, 2_001)  # 2 x the largest CNY amount, not x 1 000 000 USD cents
    assert unusual.status == 201
    assert decisions(await admin.controls_of(unusual.body["id"])) == {rule["id"]: "review"}


async def test_blocked_customer_is_declined_until_removed_from_the_list(api: Api, admin: Admin) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 10_000)
    rule = await admin.rule(name="blocked customers", kind="blocklist", action="deny",
                            merchant_id=client.merchant_id, params={"list": "customer"})
    added = await admin.call("POST", "/admin/risk/blocklist", {"list": "customer", "value": customer,
                                                               "reason": "chargebacks"})
    assert added.status == 201 and customer not in str(added.body)  # only the keyed hash is kept
    denied = await pay(client, customer, 100)
    assert denied.status == 402 and denied.body["error"]["details"]["rule"] == rule["id"]
    removed = await admin.call("DELETE", "/admin/risk/blocklist", {"list": "customer", "value": customer})
    assert removed.status == 200
    assert (await pay(client, customer, 100)).status == 201
    again = await admin.call("DELETE", "/admin/risk/blocklist", {"list": "customer", "value": customer})
    assert again.status == 404


async def test_rule_changes_take_effect_at_run_time(api: Api, admin: Admin) -> None:
    client = await api.merchant()
    customer = await api.funded_customer(client, 10_000)
    spec: dict[str, Any] = {"name": "1 per minute", "kind": "velocity", "action": "deny",
                            "merchant_id": client.merchant_id, "params": {"window_s": 60, "max_attempts": 1}}
    rule = await admin.rule(**spec)
    assert (await pay(client, customer, 100)).status == 201
    assert (await pay(client, customer, 100)).status == 402
    softened = await admin.call("PUT", f"/admin/risk/rules/{rule['id']}", {**spec, "action": "review"})
    assert softened.status == 200 and softened.body["action"] == "review"
    reviewed = await pay(client, customer, 100)
    assert reviewed.status == 201
    assert decisions(await admin.controls_of(reviewed.body["id"])) == {rule["id"]: "review"}
    listed = await admin.call("GET", "/admin/risk/rules")
    assert any(r["id"] == rule["id"] and r["action"] == "review" for r in listed.body["data"])
    deleted = await admin.call("DELETE", f"/admin/risk/rules/{rule['id']}")
    assert deleted.status == 200
    after = await pay(client, customer, 100)
    assert after.status == 201 and (await admin.controls_of(after.body["id"]))["decisions"] == []
    assert (await admin.call("GET", f"/admin/risk/rules/{rule['id']}")).status == 404


async def test_rules_of_a_method_leave_other_methods_alone(api: Api, admin: Admin) -> None:
    client = await api.merchant()
    await admin.rule(name="transfers only", kind="velocity", action="deny", merchant_id=client.merchant_id,
                     methods=["transfer"], params={"window_s": 60, "max_attempts": 1})
    customer = await api.funded_customer(client, 1_000)
    assert [(await pay(client, customer, 100)).status for _ in range(2)] == [201, 201]


async def _transfer(client: PayEngineClient, payer: str, payee: str, amount: int = 100) -> ApiResult:
    return await client.create_transfer(c2c(payer, payee, amount))


def _denied_by(result: ApiResult, rule: dict[str, Any]) -> bool:
    return result.status == 402 and result.error_code == "risk_declined" \
        and result.body["error"]["details"]["rule"] == rule["id"]


async def test_a_short_wallet_window_does_not_trim_the_transfers_an_hourly_transfer_rule_counts(
        api: Api, admin: Admin) -> None:
    client = await api.merchant()
    alice, bob = await api.funded_customer(client, 10_000), await api.funded_customer(client, 0)
    hourly = await admin.rule(name="3 transfers per hour", kind="velocity", action="deny",
                              merchant_id=client.merchant_id, methods=["transfer"],
                              params={"window_s": 3_600, "max_attempts": 3})
    await admin.rule(name="wallet burst", kind="velocity", action="deny", merchant_id=client.merchant_id,
                     methods=["wallet"], params={"window_s": 1, "max_attempts": 10})
    assert [(await _transfer(client, alice, bob)).status for _ in range(3)] == [201, 201, 201]
    await asyncio.sleep(1.2)  # the transfers are now older than the wallet rule's window
    assert [(await pay(client, alice, 100)).status for _ in range(2)] == [201, 201]
    fourth = await _transfer(client, alice, bob)
    assert _denied_by(fourth, hourly), fourth.body


async def test_a_velocity_rule_of_one_method_counts_only_that_methods_attempts(api: Api, admin: Admin) -> None:
    client = await api.merchant()
    alice, bob = await api.funded_customer(client, 10_000), await api.funded_customer(client, 0)
    transfers = await admin.rule(name="1 transfer per hour", kind="velocity", action="deny",
                                 merchant_id=client.merchant_id, methods=["transfer"],
                                 params={"window_s": 3_600, "max_attempts": 1})
    wallet = await admin.rule(name="2 wallet payments per hour", kind="velocity", action="deny",
                              merchant_id=client.merchant_id, methods=["wallet"],
                              params={"window_s": 3_600, "max_attempts": 2})
    assert [(await pay(client, alice, 100)).status for _ in range(2)] == [201, 201]
    first = await _transfer(client, alice, bob)  # the wallet payments are not the transfer rule's
    assert first.status == 201, first.body
    assert _denied_by(await _transfer(client, alice, bob), transfers)
    assert _denied_by(await pay(client, alice, 100), wallet)  # nor the transfers the wallet rule's


async def test_a_velocity_rule_of_every_method_counts_them_all(api: Api, admin: Admin) -> None:
    client = await api.merchant()
    alice, bob = await api.funded_customer(client, 10_000), await api.funded_customer(client, 0)
    every = await admin.rule(name="3 of anything per hour", kind="velocity", action="deny",
                             merchant_id=client.merchant_id, params={"window_s": 3_600, "max_attempts": 3})
    await admin.rule(name="wallet burst", kind="velocity", action="deny", merchant_id=client.merchant_id,
                     methods=["wallet"], params={"window_s": 1, "max_attempts": 10})
    assert (await pay(client, alice, 100)).status == 201
    assert (await _transfer(client, alice, bob)).status == 201
    await asyncio.sleep(1.2)
    assert (await pay(client, alice, 100)).status == 201
    assert _denied_by(await _transfer(client, alice, bob), every)


async def test_amount_anomaly_of_one_method_compares_with_that_methods_history(api: Api, admin: Admin) -> None:
    client = await api.merchant()
    alice, bob = await api.funded_customer(client, 100_000), await api.funded_customer(client, 0)
    rule = await admin.rule(name="transfer above 2x the largest", kind="amount_anomaly", action="deny",
                            merchant_id=client.merchant_id, methods=["transfer"],
                            params={"factor": 2, "basis": "max", "min_history": 1})
    assert (await pay(client, alice, 5_000)).status == 201  # a wallet payment: not the transfers' history
    assert (await _transfer(client, alice, bob, 100)).status == 201
    assert _denied_by(await _transfer(client, alice, bob, 300), rule)
    assert (await _transfer(client, alice, bob, 200)).status == 201
    assert (await pay(client, alice, 20_000)).status == 201  # the rule does not look at wallet payments


def _decided(rule: dict[str, Any], decision: str) -> float:
    return REGISTRY.get_sample_value("payengine_risk_decisions_total",
                                     {"rule": rule["id"], "kind": rule["kind"], "decision": decision}) or 0.0


async def test_a_deny_is_logged_and_every_decision_counted_by_rule(api: Api, admin: Admin,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="engine.controls.gate")
    client = await api.merchant()
    customer = await api.funded_customer(client, 10_000)
    rule = await admin.rule(name="1 per minute", kind="velocity", action="deny", merchant_id=client.merchant_id,
                            params={"window_s": 60, "max_attempts": 1})
    assert (await pay(client, customer, 100)).status == 201
    assert (await pay(client, customer, 100)).status == 402
    assert (_decided(rule, "allow"), _decided(rule, "deny")) == (1.0, 1.0)
    [declined] = [r for r in caplog.records if r.getMessage() == "attempt declined by risk rule"
                  and getattr(r, "rule_id", None) == rule["id"]]
    fields = ("rule_name", "rule_kind", "method", "merchant_id", "attempt_kind")
    assert {f: getattr(declined, f) for f in fields} == {
        "rule_name": "1 per minute", "rule_kind": "velocity", "method": "wallet", "merchant_id": client.merchant_id,
        "attempt_kind": "payment"}
    assert customer not in declined.getMessage() + str(declined.__dict__)  # ids of the merchant and rule only
