"""Bad definitions through the admin API: 422 naming what is wrong, and nothing stored."""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg
import pytest

from engine.services import SERVICES
from tests.api.conftest import Api
from tests.controls.conftest import Admin

GOOD_LIMIT = {"scope": "customer", "window": "daily", "method": "wallet", "amount_max": 1_000}
BAD_LIMITS = [
    ({**GOOD_LIMIT, "amount_max": -1}, "limits[1].amount_max"),
    ({**GOOD_LIMIT, "count_max": -5}, "limits[1].count_max"),
    ({**GOOD_LIMIT, "window": "weekly"}, "limits[1].window"),
    ({**GOOD_LIMIT, "method": "cheque"}, "limits[1].method"),
    ({**GOOD_LIMIT, "scope": "platform"}, "limits[1].scope"),
    ({**GOOD_LIMIT, "currency": "yen"}, "limits[1].currency"),
    ({**GOOD_LIMIT, "window": "single", "count_max": 3}, "limits[1].count_max"),
    ({**GOOD_LIMIT, "amount_max": "lots"}, "limits"),
    (GOOD_LIMIT, "limits[1]"),  # the same scope/window/method/currency twice
]


@pytest.mark.parametrize(("bad", "param"), BAD_LIMITS)
async def test_bad_limit_is_422_naming_it_and_nothing_is_stored(api: Api, admin: Admin, bad: dict[str, Any],
                                                                param: str) -> None:
    client = await api.merchant()
    await admin.merchant_limits(client, {"scope": "merchant", "window": "monthly", "count_max": 9})
    path = f"/admin/merchants/{client.merchant_id}/limits"
    reply = await admin.call("PUT", path, {"limits": [GOOD_LIMIT, bad]})
    assert reply.status == 422, reply.body
    assert reply.body["error"]["type"] == "invalid_request_error" and reply.body["error"]["param"] == param
    assert (await admin.call("GET", path)).body["limits"] == [
        {"scope": "merchant", "window": "monthly", "method": "*", "currency": "*", "amount_max": None,
         "count_max": 9}]
    global_before = await admin.call("GET", "/admin/limits")
    global_reply = await admin.call("PUT", "/admin/limits", {"limits": [GOOD_LIMIT, bad]})
    if global_reply.status != 422:  # never leave a global limit behind for the rest of the suite
        await admin.call("PUT", "/admin/limits", global_before.body)
    assert global_reply.status == 422
    assert (await admin.call("GET", "/admin/limits")).body == global_before.body


async def test_limits_of_an_unknown_merchant_are_404_and_admin_token_is_required(api: Api, admin: Admin) -> None:
    assert (await admin.call("GET", "/admin/merchants/mch_nobody/limits")).status == 404
    assert (await admin.call("PUT", "/admin/merchants/mch_nobody/limits", {"limits": []})).status == 404
    async with api.session.get(api.url + "/admin/limits") as resp:
        assert resp.status == 401


GOOD_RULE: dict[str, Any] = {"name": "velocity", "kind": "velocity", "action": "deny",
                             "params": {"window_s": 60, "max_attempts": 5}}
BAD_RULES = [
    ({**GOOD_RULE, "kind": "astrology"}, "kind"),
    ({**GOOD_RULE, "action": "maybe"}, "action"),
    ({**GOOD_RULE, "params": {"window_s": 0, "max_attempts": 5}}, "params.window_s"),
    ({**GOOD_RULE, "params": {"window_s": 60}}, "params.max_attempts"),
    ({**GOOD_RULE, "params": {"window_s": "60", "max_attempts": 5}}, "params.window_s"),
    ({**GOOD_RULE, "params": {"window_s": 60, "max_attempts": 5, "per": "ip"}}, "params.per"),
    ({**GOOD_RULE, "params": [60, 5]}, "params"),
    ({**GOOD_RULE, "methods": ["cash"]}, "methods"),
    ({**GOOD_RULE, "name": ""}, "name"),
    ({**GOOD_RULE, "merchant_id": "mch_nobody"}, "merchant_id"),
    ({"name": "x", "kind": "amount_anomaly", "action": "review",
      "params": {"factor": 0.5, "basis": "average", "min_history": 3}}, "params.factor"),
    ({"name": "x", "kind": "amount_anomaly", "action": "review",
      "params": {"factor": 3, "basis": "median", "min_history": 3}}, "params.basis"),
    ({"name": "x", "kind": "blocklist", "action": "deny", "params": {"list": "ip"}}, "params.list"),
]


@pytest.mark.parametrize(("bad", "param"), BAD_RULES)
async def test_malformed_rule_is_422_naming_it_and_nothing_is_stored(admin: Admin, bad: dict[str, Any],
                                                                     param: str) -> None:
    before = await admin.call("GET", "/admin/risk/rules")
    created = await admin.call("POST", "/admin/risk/rules", bad)
    assert created.status == 422, created.body
    assert created.body["error"]["param"] == param and created.body["error"]["message"]
    assert (await admin.call("GET", "/admin/risk/rules")).body == before.body


async def test_updating_a_rule_badly_keeps_the_old_definition(admin: Admin, api: Api) -> None:
    client = await api.merchant()
    rule = await admin.rule(**{**GOOD_RULE, "merchant_id": client.merchant_id})
    bad = await admin.call("PUT", f"/admin/risk/rules/{rule['id']}",
                           {**GOOD_RULE, "merchant_id": client.merchant_id, "params": {"window_s": -1,
                                                                                     "max_attempts": 5}})
    assert bad.status == 422
    assert (await admin.call("GET", f"/admin/risk/rules/{rule['id']}")).body == rule
    missing = await admin.call("PUT", "/admin/risk/rules/rr_nothing", GOOD_RULE)
    assert missing.status == 404
    assert (await admin.call("DELETE", "/admin/risk/rules/rr_nothing")).status == 404


async def test_bad_blocklist_entry_is_422(admin: Admin) -> None:
    assert (await admin.call("POST", "/admin/risk/blocklist", {"list": "ip", "value": "1.2.3.4"})).status == 422
    assert (await admin.call("POST", "/admin/risk/blocklist", {"list": "customer", "value": ""})).status == 422


@pytest.mark.parametrize("value", ["4111 1111 abcd", "4111\t1111", "4111_1111", " - ", "４１１１"])
async def test_instrument_that_is_not_a_number_is_422_naming_the_value(admin: Admin, value: str) -> None:
    reply = await admin.call("POST", "/admin/risk/blocklist", {"list": "instrument", "value": value})
    assert reply.status == 422, reply.body
    assert reply.body["error"]["param"] == "value"


async def test_a_card_blocked_with_spaces_or_dashes_is_one_entry_the_digits_match(api: Api, admin: Admin,
                                                                                  pool: asyncpg.Pool) -> None:
    digits = "".join(secrets.choice("0123456789") for _ in range(16))  # not a card other tests pay out to
    spaced, dashed = (sep.join(digits[i:i + 4] for i in range(0, 16, 4)) for sep in (" ", "-"))
    try:
        first = await admin.call("POST", "/admin/risk/blocklist", {"list": "instrument", "value": spaced})
        second = await admin.call("POST", "/admin/risk/blocklist", {"list": "instrument", "value": dashed})
        assert (first.status, second.status) == (201, 201), (first.body, second.body)
        # What a payout's normalised destination number is checked against (engine/payouts/destination.py).
        assert first.body["digest"] == second.body["digest"] == api.app[SERVICES].gate.digest("instrument", digits)
        async with pool.acquire() as conn:
            stored = await conn.fetchval("SELECT count(*) FROM risk_blocklist WHERE list = 'instrument'"
                                         " AND digest = $1", first.body["digest"])
        assert stored == 1
        removed = await admin.call("DELETE", "/admin/risk/blocklist", {"list": "instrument", "value": digits})
        assert removed.status == 200, removed.body
        again = await admin.call("DELETE", "/admin/risk/blocklist", {"list": "instrument", "value": spaced})
        assert again.status == 404
    finally:
        await admin.call("DELETE", "/admin/risk/blocklist", {"list": "instrument", "value": digits})


@pytest.mark.parametrize("typed", ["4111 2222 3333 {tail}", "card-{tail}"])
async def test_an_entry_hashed_as_typed_before_numbers_were_normalised_can_be_removed(
        api: Api, admin: Admin, pool: asyncpg.Pool, typed: str) -> None:
    tail = "".join(secrets.choice("0123456789") for _ in range(4))
    value = typed.format(tail=tail)
    legacy = api.app[SERVICES].gate.digest("instrument", value)  # how entries were hashed before the normalisation
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO risk_blocklist (list, digest, reason) VALUES ('instrument', $1, 'old')", legacy)
    try:
        removed = await admin.call("DELETE", "/admin/risk/blocklist", {"list": "instrument", "value": value})
        assert removed.status == 200, removed.body
        assert removed.body["digest"] == legacy and removed.body["deleted"] is True
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM risk_blocklist WHERE digest = $1", legacy) == 0
        again = await admin.call("DELETE", "/admin/risk/blocklist", {"list": "instrument", "value": value})
        assert again.status == 404, again.body
    finally:
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM risk_blocklist WHERE digest = $1", legacy)


async def test_openapi_lists_the_controls_admin_routes_with_their_bodies(api: Api) -> None:
    async with api.session.get(api.url + "/openapi.json") as resp:
        paths = (await resp.json())["paths"]
    assert set(paths["/admin/limits"]) == {"get", "put"}
    assert set(paths["/admin/merchants/{id}/limits"]) == {"get", "put"}
    assert set(paths["/admin/risk/rules"]) == {"get", "post"}
    assert set(paths["/admin/risk/rules/{id}"]) == {"get", "put", "delete"}
    assert set(paths["/admin/risk/blocklist"]) == {"post", "delete"}
    assert set(paths["/admin/payments/{id}/controls"]) == {"get"}
    assert set(paths["/admin/transfers/{id}/controls"]) == {"get"}
    assert set(paths["/admin/payouts/{id}/controls"]) == {"get"}
    put = paths["/admin/limits"]["put"]
    assert put["security"] == [{"adminToken": []}] and "422" in put["responses"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/PutLimits")
