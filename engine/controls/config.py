"""The gate's view of its configuration: limit rules, risk rules and the blocklist, cached per process.

The cache re-reads one version number at most every ``ttl_s`` and reloads everything only when it
moved, so an admin change takes effect in every process within ``ttl_s`` (and at once in the process
that made it: the admin handlers call ``invalidate``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass, field

import asyncpg

from engine.controls import store
from engine.controls.limits import LimitRule, LimitSets
from engine.controls.risk import RiskRule


@dataclass(frozen=True, slots=True)
class ControlConfig:
    version: int = 0
    limits: LimitSets = field(default_factory=LimitSets)
    rules: tuple[RiskRule, ...] = ()
    blocklist: frozenset[tuple[str, str]] = frozenset()  # (list, digest)

    def rules_for(self, merchant_id: str, method: str) -> list[RiskRule]:
        return [r for r in self.rules if r.applies(merchant_id, method)]

    def rules_of(self, merchant_id: str) -> list[RiskRule]:
        """Every enabled rule of the merchant (its own and the global ones), whatever its methods."""
        return [r for r in self.rules if r.enabled and r.merchant_id in (None, merchant_id)]


def instrument_digest(secret: str, list_: str, value: str) -> str:
    """A keyed hash: card and account numbers are a small space, a plain SHA-256 of one is reversible."""
    return hmac.new(f"payengine-blocklist:{secret}".encode(), f"{list_}\n{value}".encode(), hashlib.sha256).hexdigest()


async def load_config(conn: asyncpg.Connection) -> ControlConfig:
    async with conn.transaction(isolation="repeatable_read", readonly=True):  # one snapshot of everything
        version = await store.read_version(conn)
        limit_rows = await store.list_limit_rules(conn)
        rules = await store.list_risk_rules(conn)
        listed = await store.list_blocklist(conn)
    global_rules: list[LimitRule] = []
    by_merchant: dict[str, list[LimitRule]] = {}
    for merchant_id, rule in limit_rows:
        (by_merchant.setdefault(merchant_id, []) if merchant_id else global_rules).append(rule)
    return ControlConfig(version, LimitSets(tuple(global_rules), {m: tuple(r) for m, r in by_merchant.items()}),
                         tuple(rules), frozenset(listed))


class ConfigCache:
    def __init__(self, pool: asyncpg.Pool, ttl_s: float) -> None:
        self._pool = pool
        self.ttl_s = ttl_s
        self._config = ControlConfig()
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._checked_at = float("-inf")

    async def get(self) -> ControlConfig:
        """The configuration, at most ``ttl_s`` old. One refresher at a time; the others wait for it."""
        if time.monotonic() - self._checked_at < self.ttl_s:
            return self._config
        async with self._lock:
            if time.monotonic() - self._checked_at >= self.ttl_s:
                async with self._pool.acquire() as conn:
                    version = await store.read_version(conn)
                    if version != self._config.version:
                        self._config = await load_config(conn)
                self._checked_at = time.monotonic()
        return self._config
