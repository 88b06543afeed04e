"""GET /v1/payments/{id}?sync=true asks the channel when the stored status is not final.

Uses the gateway's test world (real app, in-process gateway, real channel simulators)."""

from __future__ import annotations

from tests.gateway.conftest import Gw, gw  # noqa: F401  (the fixture, reused)


async def test_sync_get_applies_a_success_the_notify_never_brought(gw: Gw) -> None:  # noqa: F811
    client = await gw.merchant()
    await gw.set_faults("wxsim", no_notify_rate=1.0)
    try:
        ready = await gw.ready_payment(client, channel="wxsim")
        await gw.pay("wxsim", ready["voucher"]["pay_url"])
    finally:
        await gw.set_faults("wxsim")
    stored = await client.get_payment(ready["id"])
    assert stored.body["status"] == "awaiting_payment"  # without sync: what we know

    synced = await client.request("GET", f"/v1/payments/{ready['id']}?sync=true")
    assert synced.status == 200 and synced.body["status"] == "succeeded"
    assert await gw.entries(ready["id"]) == ["PAY_CHANNEL"]
    again = await client.request("GET", f"/v1/payments/{ready['id']}?sync=true")  # final: nothing asked
    assert again.body["status"] == "succeeded" and await gw.entries(ready["id"]) == ["PAY_CHANNEL"]


async def test_sync_get_of_another_merchants_payment_is_404_and_bad_flag_400(gw: Gw) -> None:  # noqa: F811
    client = await gw.merchant()
    other = await gw.merchant()
    ready = await gw.ready_payment(client, channel="wxsim")
    assert (await other.request("GET", f"/v1/payments/{ready['id']}?sync=true")).status == 404
    assert (await client.request("GET", f"/v1/payments/{ready['id']}?sync=maybe")).status == 400
