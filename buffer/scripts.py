"""The buffer's Lua scripts. Each touches the keys of ONE account (one hash slot) and is atomic.

Key order is always that of ``AccountKeys.all()``: state, queue, legs, reservations, applied.
A leg's record in ``legs`` is ``seq|delta|enqueued_ms``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

# Shared helpers, prepended to every script. ``oldest_age`` reads the queue head's enqueue time.
_HELPERS = """
local function leg_delta(v) return tonumber(string.match(v, '^[^|]*|(%-?%d+)|')) end
local function leg_time(v) return tonumber(string.match(v, '|(%d+)$')) end
local function depth_and_age(now)
  local depth = redis.call('ZCARD', KEYS[2])
  if depth == 0 then return 0, 0 end
  local head = redis.call('ZRANGE', KEYS[2], 0, 0)
  local v = redis.call('HGET', KEYS[3], head[1])
  if not v then return depth, 0 end
  return depth, math.max(0, now - leg_time(v))
end
local function release(res_id)
  local r = redis.call('HGET', KEYS[4], res_id)
  if r then
    redis.call('HDEL', KEYS[4], res_id)
    redis.call('HINCRBY', KEYS[1], 'reserved', -tonumber(string.match(r, '^(%d+)')))
  end
end
"""

# ARGV: res_id, amount, floor, now_ms, max_depth, max_lag_ms.
# Returns {status, a, b}: 1 reserved {1, projected_after, depth}; 0 insufficient {0, projected, 0};
# -1 state not loaded (caller loads from PostgreSQL and retries); -2 back-pressure {-2, depth, age}.
RESERVE = _HELPERS + """
local now = tonumber(ARGV[4])
local st = redis.call('HMGET', KEYS[1], 'loaded', 'applied', 'pending', 'reserved')
if not st[1] then return {-1, 0, 0} end
local depth, age = depth_and_age(now)
if depth >= tonumber(ARGV[5]) or age >= tonumber(ARGV[6]) then return {-2, depth, age} end
local amount = tonumber(ARGV[2])
local projected = tonumber(st[2]) + tonumber(st[3] or '0') - tonumber(st[4] or '0')
if projected - amount < tonumber(ARGV[3]) then return {0, projected, 0} end
redis.call('HINCRBY', KEYS[1], 'reserved', amount)
redis.call('HSET', KEYS[4], ARGV[1], ARGV[2] .. '|' .. ARGV[4])
return {1, projected - amount, depth}
"""

# ARGV: res_id. Gives a reservation back (the transaction did not commit).
RELEASE = _HELPERS + """
release(ARGV[1])
return 1
"""

# ARGV: now_ms, k, res_id * k, then (member, delta, enqueued_ms) triples in the order to apply.
# Releases the entry's reservations and appends the legs in the same atomic step, so the amount
# moves from 'reserved' to 'pending' without a moment counted twice or not at all. A leg already
# queued, or applied within the retention window, is not added again. Returns {added, depth, age}.
ENQUEUE = _HELPERS + """
local now = tonumber(ARGV[1])
local k = tonumber(ARGV[2])
for i = 3, 2 + k do release(ARGV[i]) end
local added, net = 0, 0
for i = 3 + k, #ARGV, 3 do
  local m = ARGV[i]
  if redis.call('HEXISTS', KEYS[3], m) == 0 and not redis.call('ZSCORE', KEYS[5], m) then
    local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
    redis.call('ZADD', KEYS[2], seq, m)
    redis.call('HSET', KEYS[3], m, seq .. '|' .. ARGV[i + 1] .. '|' .. ARGV[i + 2])
    net = net + tonumber(ARGV[i + 1])
    added = added + 1
  end
end
if net ~= 0 then redis.call('HINCRBY', KEYS[1], 'pending', net) end
local depth, age = depth_and_age(now)
return {added, depth, age}
"""

# ARGV: members. Returns those Redis has never seen or has forgotten: neither queued nor applied within
# the retention window (the recovery sweep's question; the same test ENQUEUE makes before adding a leg).
MISSING = _HELPERS + """
local out = {}
for i = 1, #ARGV do
  local m = ARGV[i]
  if redis.call('HEXISTS', KEYS[3], m) == 0 and not redis.call('ZSCORE', KEYS[5], m) then out[#out + 1] = m end
end
return out
"""

# ARGV: n. Returns {loaded, member, delta, member, delta, ...}: the first n legs in sequence order.
TAKE = _HELPERS + """
if not redis.call('HGET', KEYS[1], 'loaded') then return {0} end
local out = {1}
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1)) do
  out[#out + 1] = m
  out[#out + 1] = leg_delta(redis.call('HGET', KEYS[3], m))
end
return out
"""

# ARGV: now_ms, applied_balance, retention_ms, batch_legs, batch_ms, rate_per_s, then members.
# Returns {net removed, depth, oldest age ms} (what is left, for the gauges).
# After the PostgreSQL commit: drop the flushed legs, take their net out of 'pending' and set the
# cached applied balance in the same step, so applied + pending never jumps. An empty applied_balance
# moves the net from pending to applied instead: the flusher sends it when its batch held legs an earlier
# flusher had applied and died before acking, since legs of that batch beyond this one are still queued
# while PostgreSQL's balance already holds them (setting it would count them twice). If the state was
# lost (Redis restarted) the balance is not written: the next load takes both from one snapshot.
ACK = _HELPERS + """
local now = tonumber(ARGV[1])
local net = 0
for i = 7, #ARGV do
  local m = ARGV[i]
  local v = redis.call('HGET', KEYS[3], m)
  if v then
    net = net + leg_delta(v)
    redis.call('HDEL', KEYS[3], m)
    redis.call('ZREM', KEYS[2], m)
  end
  redis.call('ZADD', KEYS[5], now, m)
end
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - tonumber(ARGV[3]))
if redis.call('HGET', KEYS[1], 'loaded') then
  if net ~= 0 then redis.call('HINCRBY', KEYS[1], 'pending', -net) end
  if ARGV[2] == '' then
    if net ~= 0 then redis.call('HINCRBY', KEYS[1], 'applied', net) end
  else
    redis.call('HSET', KEYS[1], 'applied', ARGV[2])
  end
end
redis.call('HSET', KEYS[1], 'last_batch', ARGV[4], 'last_batch_ms', ARGV[5], 'rate', ARGV[6], 'last_flush', ARGV[1])
local depth, age = depth_and_age(now)
return {net, depth, age}
"""

# ARGV: now_ms, balance, then (member, delta, enqueued_ms) triples of the legs PostgreSQL holds as
# buffered, all read in ONE snapshot with the balance. Rebuilds the account's state once after Redis
# lost it: those legs first (in journal order), then legs enqueued since (in their order).
LOAD = _HELPERS + """
if redis.call('HGET', KEYS[1], 'loaded') then return 0 end
local existing = redis.call('ZRANGE', KEYS[2], 0, -1)
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local seen, pending = {}, 0
for i = 3, #ARGV, 3 do
  local m = ARGV[i]
  seq = seq + 1
  seen[m] = true
  redis.call('ZADD', KEYS[2], seq, m)
  redis.call('HSET', KEYS[3], m, seq .. '|' .. ARGV[i + 1] .. '|' .. ARGV[i + 2])
  pending = pending + tonumber(ARGV[i + 1])
end
for _, m in ipairs(existing) do
  if not seen[m] then
    local v = redis.call('HGET', KEYS[3], m)
    local d, t = leg_delta(v), leg_time(v)
    seq = seq + 1
    redis.call('ZADD', KEYS[2], seq, m)
    redis.call('HSET', KEYS[3], m, seq .. '|' .. d .. '|' .. t)
    pending = pending + d
  end
end
local reserved = 0
local res = redis.call('HVALS', KEYS[4])
for _, r in ipairs(res) do reserved = reserved + tonumber(string.match(r, '^(%d+)')) end
redis.call('HSET', KEYS[1], 'seq', seq, 'pending', pending, 'reserved', reserved, 'applied', ARGV[2], 'loaded', 1)
return 1
"""

# ARGV: now_ms, ttl_ms. Releases reservations older than ttl (their transaction died). Returns count.
EXPIRE_RESERVATIONS = _HELPERS + """
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local all = redis.call('HGETALL', KEYS[4])
local n = 0
for i = 1, #all, 2 do
  if now - tonumber(string.match(all[i + 1], '|(%d+)$')) > ttl then release(all[i]); n = n + 1 end
end
return n
"""

# ARGV: now_ms. Returns {loaded, depth, age, applied, pending, reserved, last_batch, last_batch_ms, rate,
# last_flush}; missing values are 0 (or -1 for applied when not loaded).
STATUS = _HELPERS + """
local now = tonumber(ARGV[1])
local st = redis.call('HMGET', KEYS[1], 'loaded', 'applied', 'pending', 'reserved', 'last_batch',
                      'last_batch_ms', 'rate', 'last_flush')
local depth, age = depth_and_age(now)
local function n(x) return tonumber(x or '0') end
return {st[1] and 1 or 0, depth, age, st[2] or '-1', n(st[3]), n(st[4]), n(st[5]), n(st[6]), st[7] or '0', n(st[8])}
"""


class Scripts:
    """The registered scripts of one Redis client (EVALSHA, reloaded by redis-py when missing)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.reserve: Any = redis.register_script(RESERVE)
        self.release: Any = redis.register_script(RELEASE)
        self.enqueue: Any = redis.register_script(ENQUEUE)
        self.missing: Any = redis.register_script(MISSING)
        self.take: Any = redis.register_script(TAKE)
        self.ack: Any = redis.register_script(ACK)
        self.load: Any = redis.register_script(LOAD)
        self.expire_reservations: Any = redis.register_script(EXPIRE_RESERVATIONS)
        self.status: Any = redis.register_script(STATUS)


ScriptCall = tuple[Any, Sequence[Any], Sequence[Any]]  # (registered script, keys, args)


async def run_scripts(redis: Any, calls: Sequence[ScriptCall]) -> list[Any]:
    """Run several script calls in one round trip: a non-transactional pipeline on one server; on a
    Redis Cluster (whose pipelines refuse EVALSHA) concurrent calls, each sent to its account's node."""
    if isinstance(redis, RedisCluster):
        return list(await asyncio.gather(*(script(keys=list(keys), args=list(args)) for script, keys, args in calls)))
    # EVALSHA straight into the pipeline: redis-py's Script objects would add a SCRIPT EXISTS round trip
    # to every execute. A call refused with NOSCRIPT (Redis restarted, cache empty) did not run, so only
    # those calls are retried after loading their scripts; calls that ran are never sent twice.
    results = await _pipeline(redis, calls)
    missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
    if missing:
        for script in {calls[i][0].sha: calls[i][0] for i in missing}.values():
            await redis.script_load(script.script)
        for i, result in zip(missing, await _pipeline(redis, [calls[i] for i in missing]), strict=True):
            results[i] = result
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


async def _pipeline(redis: Any, calls: Sequence[ScriptCall]) -> list[Any]:
    async with redis.pipeline(transaction=False) as pipe:
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))
