"""Bad input to the desk: each a clear 4xx in the error shape, and nothing written (no proposal, no audit row,
no entry)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.api.conftest import Api
from tests.desk.desk import DeskHttp, desk_rows, wallet_of, who


def _adjustment(wallet: str, **changes: Any) -> dict[str, Any]:
    body = {"code": "ADJ_CUSTOMER_COMPENSATION", "amount": 100, "currency": "CNY", "reason": "r",
            "operator": who(), "accounts": {"customer_wallet": wallet}}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("unknown code", {"code": "ADJ_PRINT_MONEY"}, 400, "unknown_adjustment_code"),
    ("the generic ADJUST rule is not a desk code", {"code": "ADJUST"}, 400, "unknown_adjustment_code"),
    ("zero amount", {"amount": 0}, 400, "parameter_invalid"),
    ("negative amount", {"amount": -5}, 400, "parameter_invalid"),
    ("missing operator", {"operator": None}, 400, "parameter_missing"),
    ("empty operator", {"operator": ""}, 400, "parameter_invalid"),
    ("missing reason", {"reason": None}, 400, "parameter_missing"),
    ("unknown account", {"accounts": {"customer_wallet": "acct_nosuchaccount"}}, 404, "resource_missing"),
    ("role not named", {"accounts": {}}, 400, "account_roles_invalid"),
    ("a platform role named", {"accounts": {"adjustments": "acct_x"}}, 400, "account_roles_invalid"),
    ("currency no account is in", {"currency": "EUR"}, 400, "unsupported_currency"),
    ("unknown field: no free-form legs, so no unbalanced entry", {"legs": []}, 400, "unknown_field"),
]


@pytest.mark.parametrize(("case", "changes", "status", "code"), CASES, ids=[c[0] for c in CASES])
async def test_bad_adjustment_is_refused_and_writes_nothing(api: Api, pool: asyncpg.Pool, case: str,
                                                            changes: dict[str, Any], status: int, code: str) -> None:
    desk, client = DeskHttp(api), await api.merchant()
    _, wallet = await wallet_of(api, client, 0)
    before = await desk_rows(pool)
    reply = await desk.call("POST", "/admin/adjustments", _adjustment(wallet, **changes))
    assert (reply.status, reply.code) == (status, code), reply.body
    assert reply.body["error"]["message"]
    assert await desk_rows(pool) == before


async def test_accounts_of_another_role_or_currency_are_refused(api: Api, pool: asyncpg.Pool) -> None:
    desk, client = DeskHttp(api), await api.merchant()
    _, usd_wallet = await wallet_of(api, client, 0, "USD")
    listed = (await client.accounts()).body["data"]
    pending = next(a["id"] for a in listed if a["role"] == "merchant_pending" and a["currency"] == "CNY")
    before = await desk_rows(pool)
    wrong_role = await desk.call("POST", "/admin/adjustments", _adjustment(pending))
    assert (wrong_role.status, wrong_role.code, wrong_role.body["error"]["param"]) == (
        400, "account_role_mismatch", "accounts.customer_wallet"), wrong_role.body
    wrong_currency = await desk.call("POST", "/admin/adjustments", _adjustment(usd_wallet))
    assert (wrong_currency.status, wrong_currency.code) == (400, "currency_mismatch"), wrong_currency.body
    assert await desk_rows(pool) == before


async def test_deciding_needs_an_operator_and_a_proposal(api: Api, pool: asyncpg.Pool) -> None:
    desk, client = DeskHttp(api), await api.merchant()
    _, wallet = await wallet_of(api, client, 0)
    p = (await desk.call("POST", "/admin/adjustments", _adjustment(wallet))).body
    before = await desk_rows(pool)
    for verb in ("approve", "reject"):
        nobody = await desk.call("POST", f"/admin/adjustments/{p['id']}/{verb}", {"note": "who?"})
        assert (nobody.status, nobody.code) == (400, "parameter_missing"), nobody.body
        missing = await desk.call("POST", f"/admin/adjustments/adj_nosuchproposal/{verb}", {"operator": who()})
        assert (missing.status, missing.code) == (404, "resource_missing"), missing.body
        # An adjustment is not a reversal: each kind is found under its own path only.
        elsewhere = await desk.call("POST", f"/admin/reversals/{p['id']}/{verb}", {"operator": who()})
        assert (elsewhere.status, elsewhere.code) == (404, "resource_missing"), elsewhere.body
    assert await desk_rows(pool) == before
    assert (await desk.call("GET", "/admin/adjustments?status=booked")).status == 400
