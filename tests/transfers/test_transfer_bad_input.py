"""Bad transfer input: each refusal has its documented status, type, code and param, and books nothing."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import msgspec
import pytest

from tests.api.conftest import Api
from tests.transfers.conftest import c2c, cashback, money_of


async def _refused(api: Api, pool: asyncpg.Pool, body: dict[str, Any], status: int, type_: str, code: str,
                   param: str | None, *, client: Any, owners: list[str]) -> dict[str, Any]:
    before = await money_of(pool, client.merchant_id, owners)
    result = await client.create_transfer(body)
    assert result.status == status, result.body
    error: dict[str, Any] = result.body["error"]
    assert (error["type"], error["code"], error.get("param")) == (type_, code, param), error
    assert await money_of(pool, client.merchant_id, owners) == before
    return error


async def test_transfer_to_self_is_400(api: Api, pool: asyncpg.Pool) -> None:
    client = await api.merchant()
    alice = await api.funded_customer(client, 1_000)
    error = await _refused(api, pool, c2c(alice, alice, 10), 400, "invalid_request_error", "transfer_to_self",
                           "to_customer_id", client=client, owners=[alice])
    assert alice in error["message"]


async def test_cross_currency_transfer_without_fx_is_422_currency_mismatch(api: Api, pool: asyncpg.Pool) -> None:
    client = await api.merchant()
    cny = await api.funded_customer(client, 1_000, "CNY")
    usd = await api.funded_customer(client, 1_000, "USD")
    owners = [cny, usd]
    error = await _refused(api, pool, c2c(cny, usd, 10, "CNY"), 422, "invalid_request_error", "currency_mismatch",
                           "to_customer_id", client=client, owners=owners)
    assert "USD" in error["message"] and "CNY" in error["message"]
    await _refused(api, pool, c2c(cny, usd, 10, "USD"), 422, "invalid_request_error", "currency_mismatch",
                   "from_customer_id", client=client, owners=owners)
    await _refused(api, pool, cashback(usd, 10, "CNY"), 422, "invalid_request_error", "currency_mismatch",
                   "to_customer_id", client=client, owners=owners)


async def test_unknown_and_other_merchants_customers_are_404_alike(api: Api, pool: asyncpg.Pool) -> None:
    client = await api.merchant()
    other = await api.merchant()
    alice = await api.funded_customer(client, 1_000)
    stranger = await api.funded_customer(other, 1_000)
    owners = [alice, stranger]
    for payer, payee, param in ((alice, "cus_nosuch", "to_customer_id"), ("cus_nosuch", alice, "from_customer_id"),
                                (alice, stranger, "to_customer_id"), (stranger, alice, "from_customer_id")):
        await _refused(api, pool, c2c(payer, payee, 10), 404, "invalid_request_error", "resource_missing", param,
                       client=client, owners=owners)
    await _refused(api, pool, cashback(stranger, 10), 404, "invalid_request_error", "resource_missing",
                   "to_customer_id", client=client, owners=owners)


@pytest.mark.parametrize("amount", [0, -5, 2**63, 1.5, "10"])
async def test_amount_not_a_positive_integer_in_range_is_400(api: Api, pool: asyncpg.Pool, amount: object) -> None:
    client = await api.merchant()
    alice = await api.funded_customer(client, 1_000)
    bob = await api.funded_customer(client, 0)
    await _refused(api, pool, c2c(alice, bob, 1) | {"amount": amount}, 400, "invalid_request_error",
                   "parameter_invalid", "amount", client=client, owners=[alice, bob])


async def test_payer_must_match_the_source_and_the_currency_must_be_the_merchants(api: Api,
                                                                                  pool: asyncpg.Pool) -> None:
    client = await api.merchant(currencies=["CNY"])
    alice = await api.funded_customer(client, 1_000)
    bob = await api.funded_customer(client, 0)
    owners = [alice, bob]
    without_payer = c2c(alice, bob, 10)
    del without_payer["from_customer_id"]
    await _refused(api, pool, without_payer, 400, "invalid_request_error", "parameter_invalid", "from_customer_id",
                   client=client, owners=owners)
    await _refused(api, pool, cashback(bob, 10) | {"from_customer_id": alice}, 400, "invalid_request_error",
                   "parameter_invalid", "from_customer_id", client=client, owners=owners)
    await _refused(api, pool, c2c(alice, bob, 10, "USD"), 400, "invalid_request_error", "unsupported_currency",
                   "currency", client=client, owners=owners)
    await _refused(api, pool, c2c(alice, bob, 10) | {"source": "bank"}, 400, "invalid_request_error",
                   "parameter_invalid", "source", client=client, owners=owners)
    await _refused(api, pool, c2c(alice, bob, 10) | {"fx_rate": 1}, 400, "invalid_request_error", "unknown_field",
                   "fx_rate", client=client, owners=owners)
    missing = c2c(alice, bob, 10)
    del missing["transfer_no"]
    await _refused(api, pool, missing, 400, "invalid_request_error", "parameter_missing", "transfer_no",
                   client=client, owners=owners)


async def test_other_merchants_transfer_and_unknown_ids_are_404(api: Api) -> None:
    client = await api.merchant()
    other = await api.merchant()
    alice = await api.funded_customer(client, 1_000)
    bob = await api.funded_customer(client, 0)
    sent = await client.create_transfer(c2c(alice, bob, 10))
    assert sent.status == 201
    for result in (await other.get_transfer(sent.body["id"]), await client.get_transfer("tr_nosuch")):
        assert result.status == 404 and result.error_code == "resource_missing"
    assert (await other.list_transfers()).body["data"] == []
    assert (await client.list_transfers("starting_after=tr_nosuch")).status == 404


async def test_refusals_are_logged_with_ids_and_codes_but_not_the_body(api: Api, pool: asyncpg.Pool,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    client = await api.merchant()
    alice = await api.funded_customer(client, 100)
    bob = await api.funded_customer(client, 0)
    secret = "do-not-log-" + alice
    with caplog.at_level(logging.INFO, logger="engine.transfers.flow"):
        refused = await client.create_transfer(c2c(alice, bob, 101, description=secret, metadata={"note": secret}),
                                               idempotency_key="k-" + secret[:20])
    assert refused.status == 402
    records = [r for r in caplog.records if r.name == "engine.transfers.flow"]
    assert [(r.getMessage(), getattr(r, "code", None)) for r in records] == [("transfer refused", "insufficient_funds")]
    logged = msgspec.json.encode({k: str(v) for k, v in records[0].__dict__.items()}).decode()
    assert "do-not-log" not in logged and client.merchant_id in logged
