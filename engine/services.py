"""What the API handlers share: settings, pool, transaction numbers, merchants, platform accounts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
from aiohttp import web

from accounts.model import AccountId
from engine.controls.gate import ControlGate
from engine.customers.store import ensure_platform_accounts
from engine.http.auth import MerchantDirectory
from engine.keys import ACCOUNT, new_id
from engine.settings import Settings
from engine.txn_no import TxnNoGenerator


@dataclass
class ApiContext:
    settings: Settings
    pool: asyncpg.Pool
    txn_nos: TxnNoGenerator
    merchants: MerchantDirectory
    known_channels: frozenset[str]
    # (merchant id, payment id, expires_at) -> queued; set by engine.payments.expiry when its context starts.
    schedule_expiry: Callable[[str, str, datetime], Awaitable[bool]] | None = None
    # Limits and risk rules; set by engine.controls.wiring when its context starts.
    gate: ControlGate | None = None
    _platform: dict[str, dict[str, AccountId]] = field(default_factory=dict)
    _platform_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def platform_accounts(self, currency: str) -> dict[str, AccountId]:
        """Fee income, gateway transit and channel receivable for ``currency`` (opened once, then cached)."""
        found = self._platform.get(currency)
        if found is not None:
            return found
        async with self._platform_lock:
            if currency not in self._platform:
                async with self.pool.acquire() as conn:
                    self._platform[currency] = await ensure_platform_accounts(
                        conn, currency, self.settings.hot_internal_accounts, lambda: new_id(ACCOUNT))
            return self._platform[currency]


API = web.AppKey("api", ApiContext)
