"""Merchant onboarding and profile edits through the admin API, with every error path."""

from __future__ import annotations

import pytest

from engine.services import SERVICES
from tests.api.conftest import Api
from tests.merchants.conftest import Admin, ref


async def test_create_opens_template_accounts_and_returns_a_working_key(admin: Admin, api: Api) -> None:
    created = await admin.create(currencies=["CNY", "USD"], settlement_cycle="D+0", allowed_methods=["wallet"],
                                 allowed_channels=["wxpay"] if "wxpay" in admin_channels(api) else None)
    assert created["secret"].startswith("sk_") and created["key_id"].startswith("key_")
    assert created["settlement_cycle"] == "D+0" and created["allowed_methods"] == ["wallet"]
    roles = sorted((a["role"], a["currency"]) for a in created["accounts"])
    assert roles == [("merchant_available", "CNY"), ("merchant_available", "USD"),
                     ("merchant_fee_payable", "CNY"), ("merchant_fee_payable", "USD"),
                     ("merchant_pending", "CNY"), ("merchant_pending", "USD")]
    async with admin.client(created) as client:
        listed = await client.accounts()
    assert listed.status == 200, listed.body
    shown = await admin.call("GET", f"/admin/merchants/{created['id']}")
    assert shown.status == 200, shown.body
    assert shown.body["status"] == "active" and "secret" not in shown.body
    assert [(k["id"], k["state"]) for k in shown.body["keys"]] == [(created["key_id"], "active")]
    assert {a["id"] for a in shown.body["accounts"]} == {a["id"] for a in created["accounts"]}


def admin_channels(api: Api) -> frozenset[str]:
    return api.app[SERVICES].known_channels


@pytest.mark.parametrize(("body", "status", "param"), [
    ({"currencies": ["XXX"]}, 400, "currencies"),
    ({"settlement_cycle": "T+1"}, 400, "settlement_cycle"),
    ({"settlement_cycle": "D+31"}, 400, "settlement_cycle"),
    ({"allowed_methods": ["card"]}, 400, "allowed_methods"),
    ({"allowed_channels": ["no-such-channel"]}, 400, "allowed_channels"),
    ({"fee_bps": -1}, 400, "fee_bps"),
    ({"colour": "red"}, 400, "colour"),
])
async def test_create_rejects_bad_fields_and_creates_nothing(admin: Admin, body: dict[str, object], status: int,
                                                             param: str) -> None:
    merchant_id = "mch_bad_" + ref()[:16]
    reply = await admin.call("POST", "/admin/merchants",
                             {"name": "bad", "currencies": ["CNY"], "id": merchant_id, **body})
    assert reply.status == status, reply.body
    assert reply.body["error"]["param"] == param
    assert (await admin.call("GET", f"/admin/merchants/{merchant_id}")).status == 404


async def test_create_twice_with_one_id_conflicts(admin: Admin) -> None:
    created = await admin.create(id="mch_dup_" + ref()[:16])
    again = await admin.call("POST", "/admin/merchants", {"name": "again", "currencies": ["CNY"],
                                                         "id": created["id"]})
    assert again.status == 409 and again.code == "duplicate_order", again.body


async def test_admin_routes_need_the_admin_token(admin: Admin) -> None:
    created = await admin.create()
    for method, path in (("GET", f"/admin/merchants/{created['id']}"),
                         ("POST", f"/admin/merchants/{created['id']}/suspend"),
                         ("POST", f"/admin/merchants/{created['id']}/keys")):
        reply = await admin.call(method, path, token="wrong")
        assert reply.status == 401 and reply.body["error"]["type"] == "authentication_error", (path, reply.body)


@pytest.mark.parametrize(("method", "suffix", "body"), [
    ("GET", "", None), ("PATCH", "", {"name": "x"}), ("POST", "/suspend", None), ("POST", "/resume", None),
    ("POST", "/keys", {}), ("POST", "/keys/key_nope/revoke", None), ("POST", "/webhook-secret/rotate", {}),
])
async def test_unknown_merchant_is_404_everywhere(admin: Admin, method: str, suffix: str, body: object) -> None:
    reply = await admin.call(method, f"/admin/merchants/mch_unknown_{ref()[:12]}{suffix}", body)
    assert reply.status == 404 and reply.code == "resource_missing", reply.body


async def test_patch_changes_profile_fields_and_keeps_the_rest(admin: Admin) -> None:
    created = await admin.create()
    path = f"/admin/merchants/{created['id']}"
    reply = await admin.call("PATCH", path, {"name": "renamed", "fee_bps": 25, "fee_fixed": 3,
                                             "settlement_cycle": "D+2", "allowed_methods": ["channel"],
                                             "webhook_url": "http://127.0.0.1:9/hook"})
    assert reply.status == 200, reply.body
    body = reply.body
    assert (body["name"], body["fee_bps"], body["fee_fixed"], body["settlement_cycle"]) == ("renamed", 25, 3, "D+2")
    assert body["allowed_methods"] == ["channel"] and body["webhook_url"] == "http://127.0.0.1:9/hook"
    assert body["webhook_secret"].startswith("whsec_")  # first endpoint: its secret, shown this once
    again = await admin.call("PATCH", path, {"allowed_methods": None, "webhook_url": "http://127.0.0.1:9/other"})
    assert again.status == 200, again.body
    assert again.body["allowed_methods"] is None and again.body["webhook_secret"] is None
    assert again.body["name"] == "renamed" and again.body["settlement_cycle"] == "D+2"


@pytest.mark.parametrize(("body", "param"), [
    ({"fee_bps": 10001}, "fee_bps"), ({"settlement_cycle": "weekly"}, "settlement_cycle"),
    ({"name": ""}, "name"), ({"webhook_url": "ftp://x"}, "webhook_url"), ({"status": "active"}, "status"),
    ({"allowed_channels": ["no-such-channel"]}, "allowed_channels"),
])
async def test_patch_rejects_bad_fields_and_changes_nothing(admin: Admin, body: dict[str, object],
                                                            param: str) -> None:
    created = await admin.create()
    path = f"/admin/merchants/{created['id']}"
    before = (await admin.call("GET", path)).body
    reply = await admin.call("PATCH", path, body)
    assert reply.status == 400 and reply.body["error"]["param"] == param, reply.body
    assert (await admin.call("GET", path)).body == before


async def test_openapi_lists_the_merchant_admin_routes(api: Api) -> None:
    async with api.session.get(api.url + "/openapi.json") as resp:
        paths = (await resp.json())["paths"]
    assert set(paths["/admin/merchants/{id}"]) == {"get", "patch"}
    revoke = paths["/admin/merchants/{id}/keys/{key_id}/revoke"]["post"]
    assert [p["name"] for p in revoke["parameters"]] == ["id", "key_id"]
    for path in ("/admin/merchants/{id}/suspend", "/admin/merchants/{id}/resume", "/admin/merchants/{id}/keys",
                 "/admin/merchants/{id}/webhook-secret/rotate"):
        assert "post" in paths[path], path
    assert "403" in paths["/v1/payments"]["post"]["responses"]
