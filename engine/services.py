"""The one Services object every handler and flow is given: built once at start by engine/bootstrap.py.

A leaf at run time: the types it names are imported for the type checker only, so any module may import
this one without pulling a domain in (and without an import circle). Nothing here is replaced after
start: every field is set when the object is built and it is frozen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import asyncpg
    import redis.asyncio as aioredis

    from accounts.model import AccountId
    from buffer.sink import RedisHotLegSink
    from buffer.tuning import LiveTuning
    from engine.booking import Booker
    from engine.controls.gate import ControlGate
    from engine.controls.usage_release import ReleaseAdmission
    from engine.dayend.calendar import AccountingCalendar
    from engine.gateway.context import Gateway
    from engine.gateway.worker import GatewayWorker
    from engine.http.auth import MerchantDirectory
    from engine.http.ratelimit import RateLimiter
    from engine.ledger_admin.accounts import HotSampler
    from engine.payments.batcher import PaymentBatcher
    from engine.payments.expiry import ExpiryQueue
    from engine.settings import Settings
    from engine.txn_no import TxnNoGenerator
    from engine.webhooks.worker import DeliveryWorker


@dataclass(frozen=True, slots=True, eq=False)
class Services:
    """Everything a process's handlers, flows and loops share. Built by ``engine.bootstrap.services``."""

    settings: Settings
    database_url: str
    redis_url: str
    pool: asyncpg.Pool
    redis: aioredis.Redis
    txn_nos: TxnNoGenerator
    booker: Booker
    merchants: MerchantDirectory
    # Channel names a payment or payout may name: PAYENGINE_CHANNELS when set, else the adapter kinds.
    known_channels: frozenset[str]
    calendar: AccountingCalendar
    gate: ControlGate
    # Gives a movement's counted limit usage back (inline) / by reset (the retry loop): usage_release.py.
    release_usage: ReleaseAdmission
    release_usage_by_reset: ReleaseAdmission
    expiry: ExpiryQueue
    # Asks the channel where an unpaid channel payment stands and books a success it reports (as a notify
    # would): the gateway's refresh_payment. None when nothing was booked; never raises for channel trouble.
    refresh_payment: Callable[[str], Awaitable[object | None]]
    gateway: Gateway
    gateway_worker: GatewayWorker
    webhooks: DeliveryWorker
    rate_limiter: RateLimiter
    buffer_tuning: LiveTuning
    buffer_sink: RedisHotLegSink
    hot_sampler: HotSampler
    # Books wallet payments in batches (PAYENGINE_BATCH_MAX > 0, API processes); None: each books on its own.
    payment_batcher: PaymentBatcher | None = None

    async def platform_accounts(self, currency: str) -> dict[str, AccountId]:
        """Fee income, gateway transit and channel receivable for ``currency`` (opened once, then cached)."""
        return await self.gateway.platform_accounts(currency)


SERVICES = web.AppKey("services", Services)


def services_of(request: web.Request) -> Services:
    """The process's Services, for a handler."""
    return request.app[SERVICES]
