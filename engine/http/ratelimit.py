"""Per-merchant rate limit: a token bucket in Redis, one Lua script per request.

Each merchant has ``rate_limit_burst`` tokens that refill at ``rate_limit_per_s``; a request takes one
or is refused with 429 ``rate_limit_error`` and ``Retry-After`` (whole seconds until a token is back).
The bucket lives in Redis so every API process shares it, and the script reads Redis's clock, so
processes on hosts with skewed clocks agree. It runs after authentication: a forged request cannot
spend a merchant's tokens.

Redis down or slow (over ``rate_limit_timeout_ms``) -> the request goes through (fail open), with a
log line (once per outage, not per request) and the counter ``payengine_ratelimit_fail_open_total``.
Why: the limit protects capacity and fairness, not money. Correctness never depends on it
(idempotency, balances and refund limits are enforced by PostgreSQL), so refusing every payment
while Redis is away would turn a cache outage into a full outage for no safety gain. For a second
after a failure Redis is not asked at all, so a dead Redis costs one timeout per second, not one per
request.

Cost on the request path: a process takes tokens from the shared bucket in small chunks (up to 50 ms
of the merchant's rate, at most a tenth of the burst) and spends them locally, so a busy merchant costs
one Redis call per chunk, not per request. Tokens are taken before they are spent, so the merchants'
rate is never exceeded; the price is that near the limit one process may hold a few tokens another
process could have used (at most one chunk per process). With a low rate the chunk is 1: exact.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from engine.http.metrics import RATE_LIMIT_FAIL_OPEN, RATE_LIMITED
from engine.keys import rate_bucket_key
from engine.services import services_of
from engine.web.errors import ApiError
from engine.web.request import MERCHANT

log = logging.getLogger(__name__)

FAIL_OPEN_PAUSE_S = 1.0
CHUNK_WINDOW_S = 0.05
CHUNK_BURST_SHARE = 10
LOCAL_MERCHANTS_MAX = 10_000
FETCH_ROUNDS_MAX = 1000  # each round someone takes tokens or Redis says the bucket is empty

# KEYS[1] bucket; ARGV rate per s, burst, wanted. Takes min(wanted, whole tokens available); returns
# {taken, ms until one token is back (when none was taken)}.
_TOKEN_BUCKET = """
redis.replicate_commands()
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
  at = now
end
local taken = math.min(cost, math.floor(tokens))
local wait_ms = 0
if taken >= 1 then
  tokens = tokens - taken
else
  taken = 0
  wait_ms = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {taken, wait_ms}
"""


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, rate_per_s: int, burst: int, timeout_ms: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.timeout_s = timeout_ms / 1000
        self._script = redis.register_script(_TOKEN_BUCKET)
        self.chunk = max(1, min(burst // CHUNK_BURST_SHARE, math.ceil(rate_per_s * CHUNK_WINDOW_S)))
        self._skip_until = 0.0
        self._outage_logged = False
        self._held: dict[str, int] = {}  # merchant id -> tokens this process took and has not spent
        self._fetching: dict[str, asyncio.Future[int | None]] = {}

    async def retry_after_s(self, merchant_id: str) -> int | None:
        """None: go ahead. Otherwise the whole seconds (>= 1) until the merchant may try again."""
        if self.rate_per_s <= 0:
            return None
        for _ in range(FETCH_ROUNDS_MAX):
            held = self._held.get(merchant_id, 0)
            if held > 0:
                self._held[merchant_id] = held - 1
                return None
            # One fetch per merchant at a time: concurrent requests wait for it instead of each taking a
            # chunk (which would empty the bucket for tokens nobody spends yet).
            pending = self._fetching.get(merchant_id)
            if pending is None:
                pending = asyncio.get_running_loop().create_future()
                self._fetching[merchant_id] = pending
                wait_ms: int | None = None  # should the fetch itself fail, its waiters fail open
                try:
                    wait_ms = await self._fetch(merchant_id)
                finally:
                    del self._fetching[merchant_id]
                    pending.set_result(wait_ms)
            else:
                wait_ms = await asyncio.shield(pending)
            if wait_ms is None:  # Redis unavailable: fail open
                return None
            if wait_ms > 0:
                RATE_LIMITED.inc()
                return max(1, math.ceil(wait_ms / 1000))
        RATE_LIMITED.inc()  # others spent every token fetched meanwhile
        return 1

    async def _fetch(self, merchant_id: str) -> int | None:
        """Take a chunk into ``_held``. Returns 0 (taken), ms until a token is back, or None (fail open)."""
        now = time.monotonic()
        if now < self._skip_until:
            RATE_LIMIT_FAIL_OPEN.inc()
            return None
        try:
            taken, wait_ms = await asyncio.wait_for(
                self._script(keys=[rate_bucket_key(merchant_id)], args=[self.rate_per_s, self.burst, self.chunk]),
                self.timeout_s)
        except (RedisError, OSError, TimeoutError) as exc:
            self._skip_until = now + FAIL_OPEN_PAUSE_S
            RATE_LIMIT_FAIL_OPEN.inc()
            if not self._outage_logged:
                self._outage_logged = True
                log.warning("rate limiter cannot reach Redis; letting requests through",
                            extra={"error": type(exc).__name__})
            return None
        if self._outage_logged:
            self._outage_logged = False
            log.info("rate limiter reaches Redis again")
        if int(taken) < 1:
            return max(1, int(wait_ms))
        if len(self._held) >= LOCAL_MERCHANTS_MAX:
            self._held.clear()  # bounded; dropping held tokens only makes the limit stricter
        self._held[merchant_id] = self._held.get(merchant_id, 0) + int(taken)
        return 0


def rate_limited(retry_after_s: int) -> ApiError:
    return ApiError(429, "rate_limit_error", "rate_limited", f"too many requests; retry in {retry_after_s} s",
                    headers={"Retry-After": str(retry_after_s)})


@web.middleware
async def ratelimit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """After auth: spend one of the signing merchant's tokens, or answer 429."""
    merchant = request.get(MERCHANT)
    if merchant is not None:
        wait_s = await services_of(request).rate_limiter.retry_after_s(merchant.id)
        if wait_s is not None:
            raise rate_limited(wait_s)
    return await handler(request)
