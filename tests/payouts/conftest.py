"""The payout world: the real app (API + in-process gateway and payout worker) on a real port, a real bank
simulator serving payouts, on a database of its own (other test apps' gateways share the session database
and would take our payouts or we theirs). Internal accounts are not hot here, so no buffer is involved and
the money checks hold at any moment.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from accounts.model import AccountId, AccountKind, OverdraftRule
from accounts.rules import build_entry
from accounts.store import find_account, post_entry
from channels.sim import RunningSimulator, SimFaults, SimKind, SimProfile, start_simulator
from engine.bootstrap import create_app
from engine.channel_specs import ChannelSpec
from engine.client import PayEngineClient, create_merchant
from engine.keys import ACCOUNT, new_id
from engine.merchants.store import ensure_account
from engine.settings import Settings
from tests.conftest import Servers
from tests.databases import private_database
from tests.factories import new_txn_no, today
from tests.serving import serving

ADMIN_TOKEN = "payout-test-admin-token"
BANK_KEY = "po-bank-key"
CHANNEL = "pobank"
SECOND_CHANNEL = "pobank-b"
# A card number that passes Luhn (a common test card).
GOOD_CARD = "4111111111111111"


def payout_settings(url: str, bank_url: str, **extra: Any) -> Settings:
    base: dict[str, Any] = dict(
        admin_token=ADMIN_TOKEN, db_pool_max=40, public_url=url, hot_internal_accounts=False,
        channels=(ChannelSpec(CHANNEL, "banksim", bank_url, "sim-merchant", BANK_KEY),),
        default_channel=CHANNEL, gateway_call_timeout_ms=500, gateway_poll_interval_ms=20,
        gateway_backoff_base_ms=50, gateway_backoff_max_ms=200, janitor_interval_ms=200,
        gateway_breaker_failures=5, gateway_breaker_cool_down_ms=500,
        payout_poll_interval_ms=20, payout_query_delay_ms=150, payout_not_found_safe_s=1, payout_give_up_s=2,
        payout_lease_s=3,
        rate_limit_per_s=100_000, rate_limit_burst=100_000,
        # Our per-request limit above every channel's (10^12), so a payout can ask more than any channel takes.
        amount_max=(("*", 10**13),))
    base.update(extra)
    settings = Settings(**base)
    settings.check()
    return settings


@dataclass
class World:
    url: str
    db_url: str
    settings: Settings
    http: aiohttp.ClientSession
    pool: asyncpg.Pool
    bank: RunningSimulator
    app: web.Application
    # A second bank simulator behind channel SECOND_CHANNEL (the two-channel world only).
    second_bank: RunningSimulator | None = None

    async def merchant(self, allowed_channels: list[str] | None = None) -> PayEngineClient:
        body: dict[str, Any] = {"name": "payout test merchant", "currencies": ["CNY", "USD"], "fee_bps": 0,
                                "fee_fixed": 0}
        if allowed_channels is not None:
            body["allowed_channels"] = allowed_channels
        created = await create_merchant(self.url, ADMIN_TOKEN, body, self.http)
        return PayEngineClient(self.url, created["id"], created["secret"], session=self.http, retries_max=0)

    async def funded_customer(self, client: PayEngineClient, amount: int, currency: str = "CNY") -> str:
        created = await client.create_customer("ext-" + uuid.uuid4().hex, currency)
        assert created.status == 201, created.body
        customer_id: str = created.body["id"]
        topped = await client.topup(customer_id, amount, "tu-" + uuid.uuid4().hex)
        assert topped.status == 201, topped.body
        return customer_id

    async def fund_merchant_available(self, merchant_id: str, amount: int, currency: str = "CNY") -> AccountId:
        """Credit the merchant's available balance by an ADJUST entry (settlement would take a day-end)."""
        async with self.pool.acquire() as conn, conn.transaction():
            available = await ensure_account(conn, merchant_id, "merchant_available", currency, AccountKind.MERCHANT,
                                             False, OverdraftRule(), new_id(ACCOUNT))
            adjustments = await ensure_account(conn, "platform", "adjustments", currency, AccountKind.INTERNAL,
                                               False, OverdraftRule(), new_id(ACCOUNT))
            await post_entry(conn, build_entry("ADJUST", new_txn_no(), today(), currency,
                                               {"adjustments": adjustments, "target": available}, {"amount": amount}))
        return available

    async def balance(self, owner_id: str, role: str, currency: str = "CNY") -> int:
        async with self.pool.acquire() as conn:
            account = await find_account(conn, owner_id, role, currency)
        return 0 if account is None else account.balance_minor

    async def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with self.http.request(method, self.url + path, json=body, headers=headers) as r:
            return r.status, await r.json()

    async def limit_customer_payouts(self, merchant_id: str, daily_amount_max: int) -> None:
        """The merchant's customers may pay out at most ``daily_amount_max`` a day (through the admin API)."""
        status, body = await self.admin("PUT", f"/admin/merchants/{merchant_id}/limits", {"limits": [
            {"scope": "customer", "window": "daily", "method": "payout", "amount_max": daily_amount_max}]})
        assert status == 200, body

    def _bank(self, second: bool) -> RunningSimulator:
        if not second:
            return self.bank
        assert self.second_bank is not None, "only the two-channel world has a second bank"
        return self.second_bank

    async def set_faults(self, second: bool = False, **faults: Any) -> None:
        async with self.http.put(f"{self._bank(second).url}/sim/admin/faults", json=faults) as r:
            assert r.status == 200, await r.text()

    async def sim_payout(self, out_payout_no: str, second: bool = False) -> tuple[int, Any]:
        async with self.http.get(f"{self._bank(second).url}/sim/admin/payouts/{out_payout_no}") as r:
            return r.status, await r.json(content_type=None)

    async def breaker(self, channel: str) -> str:
        """The channel's breaker phase as the admin API reports it (closed, open, half_open)."""
        status, body = await self.admin("GET", "/admin/gateway")
        assert status == 200, body
        phase: str = body["channels"][channel]["breaker"]
        return phase

    async def wait_payout(self, client: PayEngineClient, payout_id: str,
                          done: Callable[[dict[str, Any]], bool] | None = None,
                          timeout_s: float = 10.0) -> dict[str, Any]:
        final = done or (lambda p: p["status"] in ("succeeded", "failed"))
        deadline = time.monotonic() + timeout_s
        while True:
            got = await client.get_payout(payout_id)
            assert got.status == 200, got.body
            body: dict[str, Any] = got.body
            if final(body):
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"payout never got there: {body}")
            await asyncio.sleep(0.05)

    async def entries(self, ref: str) -> list[str]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT txn_code FROM journal_entries WHERE ref = $1 ORDER BY created_at, txn_no",
                                    ref)
        return [r["txn_code"] for r in rows]


def payout_body(amount: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"merchant_payout_no": "po-" + uuid.uuid4().hex, "amount": amount, "currency": "CNY",
                            "source": "customer",
                            "destination": {"kind": "bank_card", "number": GOOD_CARD, "holder_name": "Li Lei"}}
    body.update(extra)
    return body


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="session")
async def payout_db(servers: Servers) -> AsyncIterator[str]:
    async with private_database(servers.database_url, "payouts") as url:
        yield url


async def _bank_sim(name: str, seed: int) -> RunningSimulator:
    return await start_simulator(SimProfile(name=name, kind=SimKind.BANK, key=BANK_KEY,
                                            faults=SimFaults(hang_ms=2_000), seed=seed))


@asynccontextmanager
async def _world(servers: Servers, db_url: str, bank: RunningSimulator,
                 second_bank: RunningSimulator | None = None) -> AsyncIterator[World]:
    sock = _free_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    channels = [ChannelSpec(CHANNEL, "banksim", bank.url, "sim-merchant", BANK_KEY)]
    if second_bank is not None:
        channels.append(ChannelSpec(SECOND_CHANNEL, "banksim", second_bank.url, "sim-merchant", BANK_KEY))
    settings = payout_settings(url, bank.url, channels=tuple(channels))
    app = create_app(settings, db_url, servers.redis_url)
    async with serving(app, sock=sock), aiohttp.ClientSession() as http:
        pool = await asyncpg.create_pool(db_url, min_size=2, max_size=20)
        assert pool is not None
        try:
            yield World(url, db_url, settings, http, pool, bank, app, second_bank)
        finally:
            await pool.close()


@pytest.fixture(scope="session")
async def world(servers: Servers, payout_db: str) -> AsyncIterator[World]:
    bank = await _bank_sim("pobank-sim", 11)
    try:
        async with _world(servers, payout_db, bank) as built:
            yield built
    finally:
        await bank.close()


@pytest.fixture(scope="session")
async def two_channel_world(servers: Servers) -> AsyncIterator[World]:
    """Channels CHANNEL (default) and SECOND_CHANNEL, each a bank simulator of its own, on a database of its own
    (the session world's worker would take these payouts, or this world's worker the session world's)."""
    first, second = await _bank_sim("pobank-a-sim", 12), await _bank_sim("pobank-b-sim", 13)
    try:
        async with private_database(servers.database_url, "payouts_two") as db_url, \
                _world(servers, db_url, first, second) as built:
            yield built
    finally:
        await first.close()
        await second.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0, poll_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition never held")
        await asyncio.sleep(poll_s)


async def held_payouts(world: World, client: PayEngineClient, customer: str, *amounts: int) -> list[dict[str, Any]]:
    """Payouts the channel reports with another amount than ours (1 minor unit more): each one held for a person,
    its amount frozen. The simulator's fault is off again when this returns (the held payouts are not asked
    again until a person says so)."""
    await world.set_faults(payout_report_skew_minor=1)
    try:
        created = [await client.create_payout(payout_body(amount, customer_id=customer, channel=CHANNEL))
                   for amount in amounts]
        assert all(c.status == 201 for c in created), [c.body for c in created]
        return [await world.wait_payout(client, c.body["id"], lambda p: p.get("hold_reason") is not None)
                for c in created]
    finally:
        await world.set_faults()
