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
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from engine.api.errors import ApiError
from engine.api.metrics import RATE_LIMIT_FAIL_OPEN, RATE_LIMITED
from engine.api.middleware import MERCHANT
from engine.app import REDIS, SETTINGS

log = logging.getLogger(__name__)

FAIL_OPEN_PAUSE_S = 1.0

# KEYS[1] bucket; ARGV rate per s, burst, cost. Returns {allowed (0/1), ms until `cost` tokens are back}.
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
local allowed = 0
local wait_ms = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait_ms = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, wait_ms}
"""


def bucket_key(merchant_id: str) -> str:
    """The merchant's bucket; hash-tagged so a Redis Cluster keeps each merchant's keys on one slot."""
    return f"pe:rl:{{{merchant_id}}}"


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, rate_per_s: int, burst: int, timeout_ms: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.timeout_s = timeout_ms / 1000
        self._script = redis.register_script(_TOKEN_BUCKET)
        self._skip_until = 0.0
        self._outage_logged = False

    async def retry_after_s(self, merchant_id: str) -> int | None:
        """None: go ahead. Otherwise the whole seconds (>= 1) until the merchant may try again."""
        if self.rate_per_s <= 0:
            return None
        now = time.monotonic()
        if now < self._skip_until:
            RATE_LIMIT_FAIL_OPEN.inc()
            return None
        try:
            allowed, wait_ms = await asyncio.wait_for(
                self._script(keys=[bucket_key(merchant_id)], args=[self.rate_per_s, self.burst, 1]), self.timeout_s)
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
        if int(allowed):
            return None
        RATE_LIMITED.inc()
        return max(1, math.ceil(int(wait_ms) / 1000))


RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)


def rate_limited(retry_after_s: int) -> ApiError:
    return ApiError(429, "rate_limit_error", "rate_limited", f"too many requests; retry in {retry_after_s} s",
                    headers={"Retry-After": str(retry_after_s)})


@web.middleware
async def ratelimit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """After auth: spend one of the signing merchant's tokens, or answer 429."""
    merchant = request.get(MERCHANT)
    if merchant is not None:
        wait_s = await request.app[RATE_LIMITER].retry_after_s(merchant.id)
        if wait_s is not None:
            raise rate_limited(wait_s)
    return await handler(request)


async def ratelimit_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[RATE_LIMITER] = RateLimiter(app[REDIS], settings.rate_limit_per_s, settings.rate_limit_burst,
                                    settings.rate_limit_timeout_ms)
    yield
