"""The controls' Lua scripts. Each touches the keys of ONE subject (one hash slot) and is atomic.

Key order is that of ``SubjectKeys.all()`` (day, month, velocity, history, day_preloaded, month_preloaded)
then the attempt's marker. Both scripts are idempotent per attempt id: redis-py retries a call after a
timeout, and the first run may have happened. Amounts travel as
the decimal strings Python sent (Lua numbers are doubles; HINCRBY gets the exact text).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

_HELPERS = """
local function loaded(k) return redis.call('HEXISTS', k, 'loaded') == 1 end
local function num(x) return tonumber(x or '0') end
"""

# ARGV: 1 attempt id, 2 now_ms, 3 amount, 4 currency, 5 method, 6 day_ttl_s, 7 month_ttl_s,
# 8 history_ttl_s, 9 customer (1: keep velocity and history), 10 velocity keep ms (0: none),
# 11 number of velocity windows, 12 number of checks, 13 load data present (1/0), 14 preloaded_ttl_s,
# 15 marker_ttl_s (KEYS[7], the check marker: a retried call returns the first call's answer);
# then the velocity windows (ms); then per check: window (d|m), method, amount_max (-1 none),
# count_max (-1 none); then, with load data, for the day and then the month: n, n x (field, value),
# k, k x admission id (rows summed whose check may not have run yet); then history n, sum, max; then
# v, v x (admission id, age ms): the customer's latest admissions in the velocity window (the log rebuilt).
# Returns {1, history n, sum, max, velocity counts...} when counted; {0, check index (1-based),
# metric (1 amount, 2 count), used} when a limit refuses (nothing counted); {-1} when a hash is not
# loaded and no load data came (the caller reads PostgreSQL and calls again with it).
# An attempt in a preloaded set is already inside that hash's sums: it is checked as included and not
# added again (and taken out if refused), so a rebuild never counts an in-flight admission twice.
# The velocity log is restored with ZADD NX (an entry still there keeps its time; the attempt's own row, if
# among them, is re-scored to now below, once), each at now minus its age by the database's clock.
CHECK = _HELPERS + """
local done = redis.call('GET', KEYS[7])
if done then return cjson.decode(done) end
local function finish(out)
  redis.call('SET', KEYS[7], cjson.encode(out), 'EX', ARGV[15])
  return out
end
local cust = ARGV[9] == '1'
local nwin, nchk = tonumber(ARGV[11]), tonumber(ARGV[12])
local p = 16 + nwin + 4 * nchk
local now = tonumber(ARGV[2])
if not loaded(KEYS[1]) or not loaded(KEYS[2]) or (cust and not loaded(KEYS[4])) then
  if ARGV[13] ~= '1' then return {-1} end
  for h = 1, 2 do
    local fresh = not loaded(KEYS[h])
    local n = tonumber(ARGV[p]); p = p + 1
    if fresh then
      redis.call('DEL', KEYS[h], KEYS[h + 4])
      for i = p, p + 2 * n - 1, 2 do redis.call('HSET', KEYS[h], ARGV[i], ARGV[i + 1]) end
      redis.call('HSET', KEYS[h], 'loaded', 1)
      redis.call('EXPIRE', KEYS[h], ARGV[5 + h])
    end
    p = p + 2 * n
    local k = tonumber(ARGV[p]); p = p + 1
    if fresh and k > 0 then
      for i = p, p + k - 1 do redis.call('SADD', KEYS[h + 4], ARGV[i]) end
      redis.call('EXPIRE', KEYS[h + 4], ARGV[14])
    end
    p = p + k
  end
  if cust and not loaded(KEYS[4]) then
    redis.call('HSET', KEYS[4], 'n', ARGV[p], 'sum', ARGV[p + 1], 'max', ARGV[p + 2], 'loaded', 1)
  end
  local v = tonumber(ARGV[p + 3]); p = p + 4
  if cust and tonumber(ARGV[10]) > 0 then
    for i = p, p + 2 * v - 1, 2 do redis.call('ZADD', KEYS[3], 'NX', now - tonumber(ARGV[i + 1]), ARGV[i]) end
  end
end
local amount, cur, method = tonumber(ARGV[3]), ARGV[4], ARGV[5]
local pre = {redis.call('SREM', KEYS[5], ARGV[1]) == 1, redis.call('SREM', KEYS[6], ARGV[1]) == 1}
local function add(h, sign)
  for _, m in ipairs({method, '*'}) do
    redis.call('HINCRBY', KEYS[h], cur .. '|' .. m .. '|a', sign .. ARGV[3])
    redis.call('HINCRBY', KEYS[h], cur .. '|' .. m .. '|n', sign .. '1')
  end
end
local counts = {}
if cust and tonumber(ARGV[10]) > 0 then
  redis.call('ZADD', KEYS[3], now, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[10]))
  redis.call('PEXPIRE', KEYS[3], ARGV[10])
  for i = 16, 15 + nwin do counts[#counts + 1] = redis.call('ZCOUNT', KEYS[3], now - tonumber(ARGV[i]) + 1, '+inf') end
end
for c = 0, nchk - 1 do
  local b = 16 + nwin + 4 * c
  local hi = ARGV[b] == 'd' and 1 or 2
  local amax, cmax = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local used = redis.call('HMGET', KEYS[hi], cur .. '|' .. ARGV[b + 1] .. '|a', cur .. '|' .. ARGV[b + 1] .. '|n')
  local ua, un = num(used[1]), num(used[2])
  if pre[hi] then ua = ua - amount; un = un - 1 end
  local metric = 0
  if amax >= 0 and ua + amount > amax then metric = 1 elseif cmax >= 0 and un + 1 > cmax then metric = 2 end
  if metric > 0 then
    for h = 1, 2 do if pre[h] then add(h, '-') end end
    return finish({0, c + 1, metric, metric == 1 and ua or un})
  end
end
for h = 1, 2 do
  if not pre[h] then add(h, '') end
  redis.call('EXPIRE', KEYS[h], ARGV[5 + h])
end
local hist = {0, 0, 0}
if cust then
  local st = redis.call('HMGET', KEYS[4], 'n', 'sum', 'max')
  hist = {num(st[1]), num(st[2]), num(st[3])}
  redis.call('HINCRBY', KEYS[4], 'n', 1)
  redis.call('HINCRBY', KEYS[4], 'sum', ARGV[3])
  if amount > hist[3] then redis.call('HSET', KEYS[4], 'max', ARGV[3]) end
  redis.call('EXPIRE', KEYS[4], ARGV[8])
end
local out = {1, hist[1], hist[2], hist[3]}
for _, v in ipairs(counts) do out[#out + 1] = v end
return finish(out)
"""

# ARGV: 1 attempt id, 2 amount (positive), 3 currency, 4 method, 5 customer (1/0), 6 forget the attempt's
# velocity entry (1/0), 7 marker_ttl_s (KEYS[7], the release marker: a retried call gives back once),
# 8 only if counted (1: only when KEYS[8], the check marker, shows the check counted; for a check whose
# answer was lost, which may or may not have run).
# Gives back what CHECK counted. A hash that is not loaded is left alone: it was lost after the admission,
# and its rebuild from PostgreSQL (where the admission's row is deleted after this call) can only count the
# admission, never miss it.
RELEASE = _HELPERS + """
if ARGV[8] == '1' then
  local done = redis.call('GET', KEYS[8])
  if not done or cjson.decode(done)[1] ~= 1 then return 0 end
end
if not redis.call('SET', KEYS[7], 1, 'NX', 'EX', ARGV[7]) then return 0 end
local neg = '-' .. ARGV[2]
for h = 1, 2 do
  if loaded(KEYS[h]) then
    for _, m in ipairs({ARGV[4], '*'}) do
      redis.call('HINCRBY', KEYS[h], ARGV[3] .. '|' .. m .. '|a', neg)
      redis.call('HINCRBY', KEYS[h], ARGV[3] .. '|' .. m .. '|n', -1)
    end
  end
end
if ARGV[5] == '1' and loaded(KEYS[4]) then
  redis.call('HINCRBY', KEYS[4], 'n', -1)
  redis.call('HINCRBY', KEYS[4], 'sum', neg)
end
if ARGV[6] == '1' then redis.call('ZREM', KEYS[3], ARGV[1]) end
return 1
"""


class ControlScripts:
    """The registered scripts of one Redis client (EVALSHA; NOSCRIPT handled by buffer.scripts.run_scripts)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.check: Any = redis.register_script(CHECK)
        self.release: Any = redis.register_script(RELEASE)
