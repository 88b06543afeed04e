"""Suspension answers 403 and loses nothing; allowed methods and channels hold at payment creation."""

from __future__ import annotations

from engine.http.routes import ROUTES
from engine.services import SERVICES
from tests.api.conftest import Api, order_no
from tests.merchants.conftest import Admin, ref


async def test_suspended_merchant_gets_403_and_resume_restores_everything(admin: Admin, api: Api) -> None:
    created = await admin.create()
    path = f"/admin/merchants/{created['id']}"
    async with admin.client(created) as client:
        customer = (await client.create_customer("ext-" + ref())).body["id"]
        assert (await client.topup(customer, 5000, "tu-" + ref())).status == 201
        paid = await client.create_payment({"merchant_order_no": order_no(), "amount": 1200, "currency": "CNY",
                                            "method": "wallet", "customer_id": customer})
        assert paid.status == 201, paid.body
        accounts_before = (await client.accounts()).body

        suspended = await admin.call("POST", f"{path}/suspend")
        assert suspended.status == 200 and suspended.body["status"] == "suspended", suspended.body
        assert (await admin.call("POST", f"{path}/suspend")).body["status"] == "suspended"  # repeat: no-op
        for result in (await client.get_customer(customer), await client.get_payment(paid.body["id"]),
                       await client.create_payment({"merchant_order_no": order_no(), "amount": 100,
                                                    "currency": "CNY", "method": "wallet",
                                                    "customer_id": customer})):
            assert result.status == 403, result.body
            assert result.body["error"]["type"] == "permission_error"
            assert result.body["error"]["code"] == "merchant_suspended"
        async with admin.client(created, secret="sk_" + "0" * 64) as forger:
            assert (await forger.accounts()).status == 401  # the status is told only to a correct signature

        resumed = await admin.call("POST", f"{path}/resume")
        assert resumed.status == 200 and resumed.body["status"] == "active", resumed.body
        assert (await client.accounts()).body == accounts_before
        wallet = await client.get_customer(customer)
        assert wallet.status == 200 and wallet.body["balance"] == 5000 - 1200, wallet.body
        assert (await client.get_payment(paid.body["id"])).body["status"] == "succeeded"


async def test_a_legacy_disabled_merchant_cannot_be_suspended_or_resumed(admin: Admin, api: Api) -> None:
    created = await admin.create()
    async with api.app[SERVICES].pool.acquire() as conn:
        await conn.execute("UPDATE merchants SET status = 'disabled' WHERE id = $1", created["id"])
    for action in ("suspend", "resume"):
        reply = await admin.call("POST", f"/admin/merchants/{created['id']}/{action}")
        assert reply.status == 409 and reply.code == "illegal_transition", reply.body


async def test_payment_with_a_method_the_merchant_may_not_take_is_refused(admin: Admin) -> None:
    created = await admin.create(allowed_methods=["wallet"])
    async with admin.client(created) as client:
        refused = await client.create_payment({"merchant_order_no": order_no(), "amount": 100, "currency": "CNY",
                                               "method": "channel"})
    assert refused.status == 403, refused.body
    assert refused.body["error"]["code"] == "payment_method_not_allowed"
    assert refused.body["error"]["param"] == "method"


async def test_payment_on_a_channel_outside_the_allowed_list_is_refused(admin: Admin, api: Api) -> None:
    channels = sorted(api.app[SERVICES].known_channels)
    assert len(channels) > 1, channels
    created = await admin.create(allowed_channels=channels[:1])
    async with admin.client(created) as client:
        refused = await client.create_payment({"merchant_order_no": order_no(), "amount": 100,
                                               "currency": "CNY", "method": "channel", "channel": channels[1]})
        assert refused.status == 403, refused.body
        assert (refused.body["error"]["code"], refused.body["error"]["param"]) == (
            "payment_method_not_allowed", "channel")
        allowed = await client.create_payment({"merchant_order_no": order_no(), "amount": 100, "currency": "CNY",
                                               "method": "channel", "channel": channels[0]})
        assert allowed.status == 201, allowed.body
        # Lifting the restriction lets the other channel through.
        lifted = await admin.call("PATCH", f"/admin/merchants/{created['id']}", {"allowed_channels": None})
        assert lifted.status == 200, lifted.body
        now_ok = await client.create_payment({"merchant_order_no": order_no(), "amount": 100,
                                              "currency": "CNY", "method": "channel", "channel": channels[1]})
        assert now_ok.status == 201, now_ok.body


async def test_every_merchant_route_answers_403_while_suspended_and_writes_nothing(admin: Admin, api: Api) -> None:
    """Every route a merchant key can call (read from the route table, so a new route is covered too) is
    refused while the merchant is suspended, whatever the body; the money calls among them move nothing."""
    created = await admin.create()
    async with admin.client(created) as client:
        alice = (await client.create_customer("ext-" + ref())).body["id"]
        bob = (await client.create_customer("ext-" + ref())).body["id"]
        assert (await client.topup(alice, 5000, "tu-" + ref())).status == 201
        paid = await client.create_payment({"merchant_order_no": order_no(), "amount": 1000, "currency": "CNY",
                                            "method": "wallet", "customer_id": alice})
        assert paid.status == 201, paid.body
        assert (await admin.call("POST", f"/admin/merchants/{created['id']}/suspend")).status == 200
        ids = {"/v1/customers/": alice, "/v1/payments/": paid.body["id"]}
        valid_bodies: dict[str, dict[str, object]] = {
            "/v1/customers": {"external_id": "ext-" + ref(), "currency": "CNY"},
            "/v1/customers/{id}/topups": {"amount": 100, "topup_no": "tu-" + ref()},
            "/v1/payments": {"merchant_order_no": order_no(), "amount": 100, "currency": "CNY",
                             "method": "wallet", "customer_id": alice},
            "/v1/payments/{id}/refunds": {"amount": 100, "merchant_refund_no": "rf-" + ref()},
            "/v1/transfers": {"transfer_no": "tr-" + ref(), "source": "customer", "from_customer_id": alice,
                              "to_customer_id": bob, "amount": 100, "currency": "CNY"},
            "/v1/payouts": {"merchant_payout_no": "po-" + ref(), "source": "customer", "customer_id": alice,
                            "amount": 100, "currency": "CNY",
                            "destination": {"kind": "bank_card", "number": "4111111111111111",
                                            "holder_name": "A"}},
        }
        merchant_routes = [r for r in ROUTES if r.auth == "merchant"]
        assert {r.path for r in merchant_routes} >= {"/v1/transfers", "/v1/payouts", "/v1/accounts", "/v1/events"}
        for route in merchant_routes:
            path = route.path
            for prefix, id_ in ids.items():
                if path.startswith(prefix + "{id}"):
                    path = path.replace("{id}", id_)
            path = path.replace("{id}", "x_unknown")
            body = valid_bodies.get(route.path, {}) if route.method == "POST" else None
            reply = await client.request(route.method, path, body)
            assert reply.status == 403, (route.method, path, reply.body)
            assert reply.body["error"]["code"] == "merchant_suspended", (route.method, path, reply.body)

        assert (await admin.call("POST", f"/admin/merchants/{created['id']}/resume")).status == 200
        assert (await client.get_customer(alice)).body["balance"] == 4000
        assert (await client.get_customer(bob)).body["balance"] == 0
        assert (await client.list_transfers()).body["data"] == []
        payment = (await client.get_payment(paid.body["id"])).body
        assert payment["status"] == "succeeded" and payment["amount_refunded"] == 0
        listed = (await client.list_payments()).body["data"]
        assert [p["id"] for p in listed] == [paid.body["id"]]
        # The refused bodies were valid: once resumed, the same transfer is booked.
        moved = await client.request("POST", "/v1/transfers", valid_bodies["/v1/transfers"])
        assert moved.status == 201, moved.body
        assert (await client.get_customer(bob)).body["balance"] == 100
