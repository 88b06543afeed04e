"""The bad-input matrix: each case gets its documented status and code, and the ledger is unchanged."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import msgspec
import pytest

from engine.client import PayEngineClient
from tests.api.conftest import Api, order_no
from tests.api.ledger import snapshot


def _good(customer: str) -> dict[str, Any]:
    return {"merchant_order_no": order_no(), "amount": 100, "currency": "CNY", "method": "wallet",
            "customer_id": customer}


async def _send(client: PayEngineClient, body: bytes, headers: dict[str, str] | None = None,
                path: str = "/v1/payments") -> tuple[int, dict[str, Any]]:
    signed = client.signed_headers("POST", path, body)
    result = await client.send_raw("POST", path, body, {**signed, **(headers or {})})
    return result.status, result.body


@pytest.fixture
async def setup(api: Api) -> tuple[PayEngineClient, str]:
    client = await api.merchant()
    return client, await api.funded_customer(client, 10_000)


AUTH_CASES = {
    "bad signature": {"X-Signature": "0" * 64},
    "non-hex signature": {"X-Signature": "zz"},
    "missing signature": {"X-Signature": ""},
    "unknown merchant": {"X-Merchant-Id": "mch_nobody"},
}


@pytest.mark.parametrize("case", sorted(AUTH_CASES))
async def test_authentication_failures_are_401(setup: tuple[PayEngineClient, str], pool: asyncpg.Pool,
                                               case: str) -> None:
    client, customer = setup
    before = await snapshot(pool, [client.merchant_id, customer])
    status, body = await _send(client, msgspec.json.encode(_good(customer)), AUTH_CASES[case])
    assert status == 401 and body["error"]["type"] == "authentication_error"
    assert await snapshot(pool, [client.merchant_id, customer]) == before


async def test_stale_timestamp_and_tampered_body_are_401(setup: tuple[PayEngineClient, str]) -> None:
    client, customer = setup
    raw = msgspec.json.encode(_good(customer))
    stale = client.signed_headers("POST", "/v1/payments", raw, timestamp=int(time.time()) - 301)
    assert (await client.send_raw("POST", "/v1/payments", raw, stale)).status == 401
    future = client.signed_headers("POST", "/v1/payments", raw, timestamp=int(time.time()) + 301)
    assert (await client.send_raw("POST", "/v1/payments", raw, future)).status == 401
    signed = client.signed_headers("POST", "/v1/payments", raw)
    tampered = raw.replace(b'"amount":100', b'"amount":900')
    assert (await client.send_raw("POST", "/v1/payments", tampered, signed)).status == 401
    no_headers = await client.send_raw("GET", "/v1/payments", b"", {})
    assert no_headers.status == 401 and no_headers.body["error"]["type"] == "authentication_error"


BODY_CASES: dict[str, tuple[Any, int, str, str | None]] = {
    # name: (change to the good body, status, code, param)
    "unknown field": ({"colour": "red"}, 400, "unknown_field", "colour"),
    "amount as string": ({"amount": "100"}, 400, "parameter_invalid", "amount"),
    "amount as float": ({"amount": 1.5}, 400, "parameter_invalid", "amount"),
    "zero amount": ({"amount": 0}, 400, "parameter_invalid", "amount"),
    "negative amount": ({"amount": -5}, 400, "parameter_invalid", "amount"),
    "huge amount": ({"amount": 2**63}, 400, "parameter_invalid", "amount"),
    "huger amount": ({"amount": 10**30}, 400, "parameter_invalid", "amount"),
    "amount over the wallet but in range": ({"amount": 10**12}, 402, "insufficient_funds", None),
    "amount over the currency's limit": ({"amount": 10**12 + 1}, 400, "amount_too_large", "amount"),
    "largest bigint": ({"amount": 2**63 - 1}, 400, "parameter_invalid", "amount"),
    "unsupported currency": ({"currency": "XYZ"}, 400, "unsupported_currency", "currency"),
    "lowercase currency": ({"currency": "cny"}, 400, "parameter_invalid", "currency"),
    "currency the customer does not hold": ({"currency": "USD"}, 400, "currency_mismatch", "currency"),
    "unknown method": ({"method": "cash"}, 400, "parameter_invalid", "method"),
    "missing amount": ({"amount": None}, 400, "parameter_invalid", "amount"),
    "unknown customer": ({"customer_id": "cus_nobody"}, 404, "resource_missing", "customer_id"),
    "expiry too short": ({"expires_in_s": 5}, 400, "parameter_invalid", "expires_in_s"),
    "metadata not strings": ({"metadata": {"a": 1}}, 400, "parameter_invalid", "metadata"),
}


@pytest.mark.parametrize("case", sorted(BODY_CASES))
async def test_bad_bodies_get_their_documented_error(setup: tuple[PayEngineClient, str], pool: asyncpg.Pool,
                                                     case: str) -> None:
    client, customer = setup
    change, status, code, param = BODY_CASES[case]
    body = {**_good(customer), **change}
    before = await snapshot(pool, [client.merchant_id, customer])
    got_status, got = await _send(client, msgspec.json.encode(body))
    assert (got_status, got["error"]["code"]) == (status, code), got
    assert got["error"]["param"] == param
    assert await snapshot(pool, [client.merchant_id, customer]) == before


async def test_malformed_json_and_wrong_shapes_are_400(setup: tuple[PayEngineClient, str], pool: asyncpg.Pool) -> None:
    client, customer = setup
    before = await snapshot(pool, [client.merchant_id, customer])
    for raw in (b"{not json", b"[1, 2]", b'"just a string"', b"", b'{"amount": 1', b"\xff\xfe"):
        status, body = await _send(client, raw)
        assert status == 400, (raw, body)
        assert body["error"]["type"] == "invalid_request_error"
    assert await snapshot(pool, [client.merchant_id, customer]) == before


async def test_bodies_over_64_kib_are_413(setup: tuple[PayEngineClient, str], pool: asyncpg.Pool) -> None:
    client, customer = setup
    before = await snapshot(pool, [client.merchant_id, customer])
    for size in (64 * 1024 + 1, 1024 * 1024):
        body = msgspec.json.encode({**_good(customer), "description": "x" * size})
        status, got = await _send(client, body)
        assert status == 413 and got["error"]["code"] == "request_too_large"
    assert await snapshot(pool, [client.merchant_id, customer]) == before


async def test_unknown_routes_and_methods_keep_the_error_shape(api: Api, setup: tuple[PayEngineClient, str]) -> None:
    client, _ = setup
    missing = await client.request("GET", "/v1/nothing-here")
    assert missing.status == 404 and missing.body["error"]["code"] == "route_not_found"
    wrong = await client.request("DELETE", "/v1/payments")
    assert wrong.status == 405 and wrong.body["error"]["type"] == "invalid_request_error"


async def test_admin_endpoints_need_the_bearer_token(api: Api) -> None:
    async with api.session.get(api.url + "/admin/trial-balance") as resp:
        assert resp.status == 401
    async with api.session.get(api.url + "/admin/trial-balance",
                               headers={"Authorization": "Bearer wrong"}) as resp:
        assert resp.status == 401
    async with api.session.get(api.url + "/admin/trial-balance",
                               headers={"Authorization": f"Bearer {api.settings.admin_token}"}) as resp:
        assert resp.status == 200 and (await resp.json())["holds"] is True
