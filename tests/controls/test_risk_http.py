"""Risk rules through HTTP: each kind and decision, recorded with the payment, changed at run time.

Every rule here is scoped to the test's own merchant (merchant_id), so it never touches other tests.
"""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api
from tests.controls.conftest import Admin, pay


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
