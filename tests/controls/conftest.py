"""Controls under test: the real app (tests/api/conftest.py's ``api``), its admin API over HTTP, and
merchants/customers of their own (random ids). Global limits are only ever set inside one test, in a
currency/method no other test pays with at that moment, and restored before it ends."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from engine.client import ApiResult, PayEngineClient
from engine.controls.keys import all_keys_pattern
from tests.api.conftest import AdminHttp, Api, api

__all__ = ["api"]


class Admin(AdminHttp):
    async def merchant_limits(self, client: PayEngineClient, *limits: dict[str, Any]) -> None:
        reply = await self.call("PUT", f"/admin/merchants/{client.merchant_id}/limits", {"limits": list(limits)})
        assert reply.status == 200, reply.body

    async def rule(self, **spec: Any) -> dict[str, Any]:
        reply = await self.call("POST", "/admin/risk/rules", spec)
        assert reply.status == 201, reply.body
        created: dict[str, Any] = reply.body
        return created

    async def controls_of(self, payment_id: str) -> dict[str, Any]:
        reply = await self.call("GET", f"/admin/payments/{payment_id}/controls")
        assert reply.status == 200, reply.body
        controls: dict[str, Any] = reply.body["controls"]
        return controls


@pytest.fixture
def admin(api: Api) -> Admin:
    return Admin(api)


def order_no() -> str:
    return "ord-" + uuid.uuid4().hex


async def pay(client: PayEngineClient, customer: str | None, amount: int, method: str = "wallet",
              **kw: Any) -> ApiResult:
    body: dict[str, Any] = {"merchant_order_no": order_no(), "amount": amount, "currency": "CNY", "method": method}
    if customer is not None:
        body["customer_id"] = customer
    return await client.create_payment(body, **kw)


async def wipe_control_keys(redis: aioredis.Redis) -> int:
    """What a Redis restart without persistence does to the controls: every counter, log and history gone.
    (Only our keys: the buffer's keys belong to other tests sharing this Redis.)"""
    gone = 0
    async for key in redis.scan_iter(match=all_keys_pattern(), count=1000):
        gone += await redis.delete(key)
    return gone
