"""API key rotation: during the rollover both keys verify, after revoke or expiry only the new one."""

from __future__ import annotations

import asyncio
import secrets
import time

from engine.client import PayEngineClient
from engine.http.auth import MerchantDirectory
from engine.merchants.invalidation import ChangeListener
from engine.merchants.pricing import Pricing
from engine.merchants.signing import derive_secret
from engine.merchants.store import insert_merchant
from engine.services import SERVICES
from tests.api.conftest import Api
from tests.merchants.conftest import Admin, ref


async def _works(client: PayEngineClient) -> int:
    return (await client.accounts()).status


async def test_both_keys_verify_during_rollover_and_only_the_new_one_after_revoke(admin: Admin) -> None:
    created = await admin.create()
    old_plain = admin.client(created)  # a client from before key ids: sends no X-Key-Id
    old_keyed = admin.client(created, key_id=created["key_id"])
    async with old_plain, old_keyed:
        assert await _works(old_plain) == 200 and await _works(old_keyed) == 200
        rotated = await admin.call("POST", f"/admin/merchants/{created['id']}/keys", {"rollover_s": 3600})
        assert rotated.status == 201, rotated.body
        new_key = rotated.body
        assert new_key["secret"] != created["secret"]
        assert [(k["id"], k["state"]) for k in new_key["previous_keys"]] == [(created["key_id"], "rolling")]
        async with admin.client(created, new_key["secret"], new_key["id"]) as new_keyed, \
                admin.client(created, new_key["secret"]) as new_plain:
            assert [await _works(c) for c in (old_plain, old_keyed, new_keyed, new_plain)] == [200] * 4
            shown = await admin.call("GET", f"/admin/merchants/{created['id']}")
            assert {k["id"]: k["state"] for k in shown.body["keys"]} == {created["key_id"]: "rolling",
                                                                          new_key["id"]: "active"}
            revoked = await admin.call("POST", f"/admin/merchants/{created['id']}/keys/{created['key_id']}/revoke")
            assert revoked.status == 200 and revoked.body["state"] == "revoked", revoked.body
            assert [await _works(c) for c in (old_plain, old_keyed, new_keyed, new_plain)] == [401, 401, 200, 200]
            again = await admin.call("POST", f"/admin/merchants/{created['id']}/keys/{created['key_id']}/revoke")
            assert again.status == 200 and again.body["state"] == "revoked"  # revoking twice changes nothing


async def test_old_key_stops_verifying_when_its_rollover_window_ends(admin: Admin) -> None:
    created = await admin.create()
    rotated = await admin.call("POST", f"/admin/merchants/{created['id']}/keys", {"rollover_s": 1})
    assert rotated.status == 201, rotated.body
    async with admin.client(created, key_id=created["key_id"]) as old, \
            admin.client(created, rotated.body["secret"], rotated.body["id"]) as new:
        assert await _works(old) == 200 and await _works(new) == 200
        await asyncio.sleep(1.2)  # the window is checked per request, even for a cached merchant
        assert await _works(old) == 401 and await _works(new) == 200
    states = {k["id"]: k["state"] for k in (await admin.call("GET", f"/admin/merchants/{created['id']}")).body["keys"]}
    assert states == {created["key_id"]: "expired", rotated.body["id"]: "active"}


async def test_a_second_rotation_revokes_the_key_still_rolling(admin: Admin) -> None:
    created = await admin.create()
    path = f"/admin/merchants/{created['id']}/keys"
    first = (await admin.call("POST", path, {})).body
    second = (await admin.call("POST", path, {"rollover_s": 600})).body
    states = {k["id"]: k["state"] for k in (await admin.call("GET", f"/admin/merchants/{created['id']}")).body["keys"]}
    assert states == {created["key_id"]: "revoked", first["id"]: "rolling", second["id"]: "active"}
    async with admin.client(created) as original:
        assert await _works(original) == 401


async def test_rollover_zero_revokes_the_old_key_at_once(admin: Admin) -> None:
    created = await admin.create()
    rotated = await admin.call("POST", f"/admin/merchants/{created['id']}/keys", {"rollover_s": 0})
    assert rotated.status == 201 and rotated.body["previous_keys"][0]["state"] == "revoked", rotated.body
    async with admin.client(created) as old:
        assert await _works(old) == 401


async def test_key_errors(admin: Admin) -> None:
    created = await admin.create()
    base = f"/admin/merchants/{created['id']}/keys"
    primary = await admin.call("POST", f"{base}/{created['key_id']}/revoke")
    assert primary.status == 409 and primary.code == "key_not_revocable", primary.body
    unknown = await admin.call("POST", f"{base}/key_unknown/revoke")
    assert unknown.status == 404 and unknown.body["error"]["param"] == "key_id", unknown.body
    other = await admin.create()
    foreign = await admin.call("POST", f"/admin/merchants/{other['id']}/keys/{created['key_id']}/revoke")
    assert foreign.status == 404, foreign.body  # another merchant's key is not found, not revoked
    for body in ({"rollover_s": -1}, {"rollover_s": 10**9}, {"rollover": 5}):
        bad = await admin.call("POST", base, body)
        assert bad.status == 400, (body, bad.body)
    async with admin.client(created, key_id="key_unknown") as unknown_key:
        assert await _works(unknown_key) == 401


async def test_concurrent_rotations_leave_one_primary_and_at_most_one_rolling_key(admin: Admin) -> None:
    created = await admin.create()
    path = f"/admin/merchants/{created['id']}/keys"
    replies = await asyncio.gather(*(admin.call("POST", path, {"rollover_s": 600}) for _ in range(8)))
    assert [r.status for r in replies] == [201] * 8
    states = [k["state"] for k in (await admin.call("GET", f"/admin/merchants/{created['id']}")).body["keys"]]
    assert sorted(states) == sorted(["active", "rolling"] + ["revoked"] * 7)
    verifying = 0
    for reply in replies:
        async with admin.client(created, reply.body["secret"], reply.body["id"]) as client:
            verifying += await _works(client) == 200
    assert verifying == 2


async def test_a_merchant_inserted_outside_the_admin_api_has_a_primary_key_and_can_rotate(admin: Admin,
                                                                                          api: Api) -> None:
    merchant_id = "mch_legacy_" + ref()[:12]
    salt = secrets.token_bytes(16)
    async with api.app[SERVICES].pool.acquire() as conn:  # the way demo seeding inserts merchants
        assert await insert_merchant(conn, merchant_id, "legacy", salt, Pricing(0, 0))
    legacy = {"id": merchant_id, "secret": derive_secret(api.settings.api_secret_key, merchant_id, salt)}
    async with admin.client(legacy) as client:
        assert await _works(client) == 200
        keys = (await admin.call("GET", f"/admin/merchants/{merchant_id}")).body["keys"]
        assert [k["state"] for k in keys] == ["active"]
        rotated = await admin.call("POST", f"/admin/merchants/{merchant_id}/keys", {"rollover_s": 60})
        assert rotated.status == 201 and rotated.body["previous_keys"][0]["id"] == keys[0]["id"]
        assert await _works(client) == 200  # still inside the rollover


async def test_another_processes_cache_forgets_a_revoked_key_at_once(admin: Admin, api: Api) -> None:
    """Another API worker: its own directory (long TTL) and change listener on the same database."""
    pool = api.app[SERVICES].pool
    other = MerchantDirectory(pool, api.settings.api_secret_key, ttl_s=3600)
    listener = ChangeListener(api.app[SERVICES].database_url, other.forget)
    await listener.start()
    try:
        created = await admin.create()
        rotated = await admin.call("POST", f"/admin/merchants/{created['id']}/keys", {"rollover_s": 3600})
        assert rotated.status == 201
        assert await other.lookup(created["id"], created["key_id"]) is not None  # cached, still rolling
        revoked = await admin.call("POST", f"/admin/merchants/{created['id']}/keys/{created['key_id']}/revoke")
        assert revoked.status == 200
        deadline = time.monotonic() + 2.0
        while await other.lookup(created["id"], created["key_id"]) is not None:
            assert time.monotonic() < deadline, "the other process still accepts the revoked key"
            await asyncio.sleep(0.02)
        assert await other.lookup(created["id"], rotated.body["id"]) is not None
    finally:
        await listener.stop()
