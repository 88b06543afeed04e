"""What every part of the gateway shares: settings, pool, booker, adapters, health, and routing.

Built once per process by `engine.gateway.wiring`; passed down explicitly, never a module global.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp
import asyncpg

from accounts.model import AccountId
from channels.breaker import BreakerPolicy
from channels.errors import ChannelRejected, ChannelTimeout, ChannelUnavailable
from channels.protocol import Channel, ChannelConfig, ChannelOrderStatus
from channels.registry import build_channel
from channels.routing import DEFAULT_QUALITY_POLICY, ChannelTraits, RouteRequest, quality_key, route_channels
from engine.booking import Booker
from engine.channel_specs import ChannelSpec
from engine.controls.usage_release import ReleaseAdmission
from engine.gateway.health import ChannelHealth
from engine.gateway.metrics import CHANNEL_CALLS, CHANNEL_LATENCY
from engine.keys import ACCOUNT, new_id
from engine.merchants.store import ensure_platform_accounts
from engine.settings import Settings
from engine.txn_no import TxnNoGenerator

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class ConfiguredChannel:
    spec: ChannelSpec
    adapter: Channel
    traits: ChannelTraits
    # Bounds calls in flight to this channel, so one slow channel cannot take every connection.
    slots: asyncio.Semaphore


def notify_url(settings: Settings, channel: str) -> str:
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    return f"{base.rstrip('/')}/channels/{channel}/notify"


def build_channels(settings: Settings, session: aiohttp.ClientSession) -> dict[str, ConfiguredChannel]:
    """One adapter per configured channel; raises registry.UnknownChannel for an unknown kind."""
    found: dict[str, ConfiguredChannel] = {}
    for spec in settings.channels:
        config = ChannelConfig(name=spec.name, base_url=spec.base_url, merchant_id=spec.merchant_id, key=spec.key,
                               notify_url=notify_url(settings, spec.name),
                               timeout_s=settings.gateway_call_timeout_ms / 1000)
        traits = ChannelTraits(name=spec.name, currencies=frozenset(settings.currencies),
                               methods=frozenset({"channel"}), cost_bps=spec.cost_bps)
        found[spec.name] = ConfiguredChannel(spec, build_channel(session, config, spec.kind), traits,
                                             asyncio.Semaphore(settings.gateway_channel_concurrency))
    return found


@dataclass
class Gateway:
    settings: Settings
    pool: asyncpg.Pool
    booker: Booker
    txn_nos: TxnNoGenerator
    channels: dict[str, ConfiguredChannel]
    health: ChannelHealth
    worker_id: str
    _platform: dict[str, dict[str, AccountId]] = field(default_factory=dict)
    # Gives a payment's counted limit usage back when the gateway ends it without money (voucher failed,
    # expired): engine/controls/usage_release.py. None: the release loop of the API processes does, later.
    release_usage: ReleaseAdmission | None = None

    @staticmethod
    def breaker_policy(settings: Settings) -> BreakerPolicy:
        return BreakerPolicy(failures_to_open=settings.gateway_breaker_failures,
                             cool_down_s=settings.gateway_breaker_cool_down_ms / 1000)

    async def platform_accounts(self, currency: str) -> dict[str, AccountId]:
        """Channel receivable, gateway transit and fee income for `currency` (opened once, then cached)."""
        found = self._platform.get(currency)
        if found is None:
            async with self.pool.acquire() as conn:
                found = await ensure_platform_accounts(conn, currency, self.settings.hot_internal_accounts,
                                                       lambda: new_id(ACCOUNT))
            self._platform[currency] = found
        return found

    def route(self, currency: str, amount: int, preferred: str | None) -> list[str]:
        """Channels to try, best first: routing's three levels over our own measurements, except that the
        payment's own channel goes first while it is healthy (a merchant's choice beats cost, not outages)."""
        now_s = time.monotonic()
        quality = self.health.quality(now_s)
        decision = route_channels(
            RouteRequest(currency=currency, method="channel", amount_minor=amount),
            [c.traits for c in self.channels.values()], quality, self.health.breakers(), self.health.policy, now_s)
        ranked = list(decision.ranked)
        if preferred in ranked and not quality_key(quality.get(preferred), DEFAULT_QUALITY_POLICY)[0]:
            ranked.remove(preferred)
            ranked.insert(0, preferred)
        return ranked

    async def call(self, name: str, operation: str, call: Callable[[Channel], Awaitable[_T]]) -> _T:
        """Run one channel call under the channel's concurrency bound, measuring it for breaker and routing.

        Timeouts, unavailability and unreadable answers count as failures; a business refusal counts
        as a success (the channel is up). Errors propagate unchanged."""
        configured = self.channels[name]
        async with configured.slots:
            started = time.monotonic()
            outcome = "ok"
            try:
                return await call(configured.adapter)
            except ChannelRejected:
                outcome = "rejected"
                raise
            except ChannelTimeout:
                outcome = "timeout"
                raise
            except ChannelUnavailable:
                outcome = "unavailable"
                raise
            except Exception:
                outcome = "bad_answer"
                raise
            finally:
                elapsed_s = time.monotonic() - started
                ok = outcome in ("ok", "rejected")
                self.health.record(name, ok, elapsed_s * 1000, time.monotonic())
                CHANNEL_CALLS.labels(name, operation, outcome).inc()
                CHANNEL_LATENCY.labels(name, operation).observe(elapsed_s)


    async def query(self, name: str, out_trade_no: str) -> ChannelOrderStatus:
        """`call` for the most common operation: where does our order stand at `name`?"""
        return await self.call(name, "query", lambda ch: ch.query(out_trade_no))


@asynccontextmanager
async def channel_session(settings: Settings) -> AsyncIterator[aiohttp.ClientSession]:
    """The HTTP client for channel calls; its connection limit matches the calls we allow in flight."""
    limit = settings.gateway_channel_concurrency * max(1, len(settings.channels)) + 16
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit)) as session:
        yield session
