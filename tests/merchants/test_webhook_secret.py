"""Webhook secret rotation: real deliveries by the app's worker verify with the current secret; during an
overlap also with the previous one; a secret retired without overlap no longer verifies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from engine.client import PayEngineClient
from engine.webhooks.signing import SIGNATURE_HEADER, verify_signature
from tests.api.conftest import order_no
from tests.merchants.conftest import Admin, ref
from tests.serving import serving

DELIVERY_TIMEOUT_S = 10.0


@dataclass
class Receiver:
    url: str = ""
    deliveries: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)  # token -> (header, body)

    async def handle(self, request: web.Request) -> web.Response:
        self.deliveries.setdefault(request.match_info["token"], []).append(
            (request.headers.get(SIGNATURE_HEADER, ""), await request.read()))
        return web.Response(text="ok")

    async def next_delivery(self, token: str, seen: int) -> tuple[str, bytes]:
        deadline = time.monotonic() + DELIVERY_TIMEOUT_S
        while len(self.deliveries.get(token, [])) <= seen:
            assert time.monotonic() < deadline, "no webhook delivery"
            await asyncio.sleep(0.05)
        return self.deliveries[token][seen]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook/{token}", found.handle)
    async with serving(app) as served:
        found.url = served.url
        yield found


async def _pay(client: PayEngineClient) -> None:
    customer = (await client.create_customer("ext-" + ref())).body["id"]
    assert (await client.topup(customer, 500, "tu-" + ref())).status == 201
    paid = await client.create_payment({"merchant_order_no": order_no(), "amount": 500, "currency": "CNY",
                                        "method": "wallet", "customer_id": customer})
    assert paid.status == 201, paid.body


async def test_deliveries_verify_with_the_current_secret_after_rotation(admin: Admin, receiver: Receiver) -> None:
    token = ref()
    created = await admin.create(webhook_url=f"{receiver.url}/hook/{token}")
    first = created["webhook_secret"]
    rotate = f"/admin/merchants/{created['id']}/webhook-secret/rotate"
    second = await admin.call("POST", rotate, {"overlap_s": 0})
    assert second.status == 201 and second.body["previous_secret_expires_at"] is None, second.body
    current = second.body["webhook_secret"]
    assert current.startswith("whsec_") and current != first
    async with admin.client(created) as client:
        await _pay(client)
        header, body = await receiver.next_delivery(token, 0)
        assert verify_signature(current, header, body, time.time())
        assert not verify_signature(first, header, body, time.time())  # retired without overlap

        third = await admin.call("POST", rotate, {"overlap_s": 3600})
        assert third.status == 201 and third.body["previous_secret_expires_at"] is not None, third.body
        newest = third.body["webhook_secret"]
        await _pay(client)
        header, body = await receiver.next_delivery(token, 1)
    assert verify_signature(newest, header, body, time.time())
    assert verify_signature(current, header, body, time.time())  # the overlap: old receivers keep verifying
    assert not verify_signature(first, header, body, time.time())
    shown = await admin.call("GET", f"/admin/merchants/{created['id']}")
    assert shown.body["webhook_secret"] is None  # a secret is shown once, by the call that made it
