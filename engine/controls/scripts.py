"""The controls' Lua scripts. Each touches the keys of ONE subject (one hash slot) and is atomic.

Key order: day, month, the attempt's method's velocity log and history, day_preloaded, month_preloaded,
then the attempt's marker(s) and more (see each script). Histories are those of the attempt's currency (the
caller picks the keys); velocity logs count attempts of every currency. Both scripts are idempotent per attempt id:
redis-py retries a call after a timeout, and the first run may have happened. Amounts travel as the
decimal strings Python sent (Lua numbers are doubles; HINCRBY gets the exact text).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

_HELPERS = """
local function loaded(k) return redis.call('HEXISTS', k, 'loaded') == 1 end
local function num(x) return tonumber(x or '0') end
"""

# KEYS: 1 day, 2 month, 3 the attempt's method's velocity log, 4 its method's history in the attempt's
# currency, 5 day_preloaded, 6 month_preloaded, 7 the check marker (a retried call returns the first call's
# answer), then every method's velocity log (8 .. 7+M) and history in the attempt's currency (8+M .. 7+2M),
# in METHODS order (M methods).
# ARGV: 1 attempt id, 2 now_ms, 3 amount, 4 currency, 5 method, 6 day_ttl_s, 7 month_ttl_s,
# 8 history_ttl_s, 9 customer (1: keep velocity and history), 10 how long the attempt's method's log keeps
# an entry (ms; 0: no rule counts this method, not logged), 11 number of velocity windows, 12 number of
# checks, 13 load data present (1/0), 14 preloaded_ttl_s, 15 marker_ttl_s, 16 M; then per method how long
# its log keeps an entry (ms; a rebuild restores only those); then per velocity window: window (ms) and
# the methods it counts (bit m-1 set: method m); then per check: window (d|m), method, amount_max
# (-1 none), count_max (-1 none); then, with load data, for the day and then the month: n, n x (field,
# value), k, k x admission id (rows summed whose check may not have run yet); then per method history n,
# sum, max (the attempt's currency); then v, v x (admission id, age ms, method index): each method's latest
# admissions (logs rebuilt).
# Returns {1, per method history n, sum, max (customer only), velocity counts...} when counted; {0, check
# index (1-based), metric (1 amount, 2 count), used} when a limit refuses (nothing counted); {-1} when a
# hash is not loaded and no load data came (the caller reads PostgreSQL and calls again with it).
# An attempt in a preloaded set is already inside that hash's sums: it is checked as included and not
# added again (and taken out if refused), so a rebuild never counts an in-flight admission twice.
# A velocity log is restored with ZADD NX (an entry still there keeps its time; the attempt's own row, if
# among them, is re-scored to now below, once), each at now minus its age by the database's clock.
# A log is only ever trimmed, and expires, by the longest window of the rules counting its method, so a
# short window of one method never drops the entries a longer window of another rule still needs.
CHECK = _HELPERS + """
local done = redis.call('GET', KEYS[7])
if done then return cjson.decode(done) end
local function finish(out)
  redis.call('SET', KEYS[7], cjson.encode(out), 'EX', ARGV[15])
  return out
end
local cust = ARGV[9] == '1'
local nwin, nchk, nm = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[16])
local w0 = 17 + nm
local c0 = w0 + 2 * nwin
local p = c0 + 4 * nchk
local now = tonumber(ARGV[2])
local function vlog(m) return KEYS[7 + m] end
local function hist(m) return KEYS[7 + nm + m] end
local function keep(m) return tonumber(ARGV[16 + m]) end
local function histories_loaded()
  for m = 1, nm do if not loaded(hist(m)) then return false end end
  return true
end
if not loaded(KEYS[1]) or not loaded(KEYS[2]) or (cust and not histories_loaded()) then
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
  for m = 1, nm do
    if cust and not loaded(hist(m)) then
      redis.call('HSET', hist(m), 'n', ARGV[p], 'sum', ARGV[p + 1], 'max', ARGV[p + 2], 'loaded', 1)
      redis.call('EXPIRE', hist(m), ARGV[8])
    end
    p = p + 3
  end
  local v = tonumber(ARGV[p]); p = p + 1
  if cust then
    for i = p, p + 3 * v - 1, 3 do
      local age, m = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
      if age < keep(m) then redis.call('ZADD', vlog(m), 'NX', now - age, ARGV[i]) end
    end
    for m = 1, nm do if keep(m) > 0 then redis.call('PEXPIRE', vlog(m), keep(m)) end end
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
if cust then
  local own = tonumber(ARGV[10])
  if own > 0 then
    redis.call('ZADD', KEYS[3], now, ARGV[1])
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - own)
    redis.call('PEXPIRE', KEYS[3], own)
  end
  for w = w0, c0 - 1, 2 do
    local from, mask, seen = now - tonumber(ARGV[w]) + 1, tonumber(ARGV[w + 1]), 0
    for m = 1, nm do
      if math.floor(mask / 2 ^ (m - 1)) % 2 == 1 then seen = seen + redis.call('ZCOUNT', vlog(m), from, '+inf') end
    end
    counts[#counts + 1] = seen
  end
end
for c = 0, nchk - 1 do
  local b = c0 + 4 * c
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
local out = {1}
if cust then
  for m = 1, nm do
    local st = redis.call('HMGET', hist(m), 'n', 'sum', 'max')
    out[#out + 1] = num(st[1]); out[#out + 1] = num(st[2]); out[#out + 1] = num(st[3])
    redis.call('EXPIRE', hist(m), ARGV[8])
  end
  local mine = redis.call('HMGET', KEYS[4], 'max')
  redis.call('HINCRBY', KEYS[4], 'n', 1)
  redis.call('HINCRBY', KEYS[4], 'sum', ARGV[3])
  if amount > num(mine[1]) then redis.call('HSET', KEYS[4], 'max', ARGV[3]) end
end
for _, v in ipairs(counts) do out[#out + 1] = v end
return finish(out)
"""

# KEYS: 1-6 as CHECK's, 7 the release marker, 8 the check marker.
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
