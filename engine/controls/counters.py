"""The Redis side of limits: atomic check-and-count per subject, rebuilt from PostgreSQL when lost.

One script call per subject (the customer, the merchant), each on its own hash slot; on one server
both go in one pipelined round trip, on a Cluster concurrently. A subject whose counters Redis no
longer has answers "not loaded"; its usage is then read from PostgreSQL (the record) and the call is
repeated with it, and the script loads and checks in one atomic step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisError

from engine import keys
from engine.controls import store
from engine.controls.errors import ControlsUnavailable
from engine.controls.limits import METHODS, LimitRule
from engine.controls.risk import History, VelocityWindow
from engine.controls.scripts import ControlScripts
from engine.grouping import Grouped

# How long the keys of engine/keys.py's controls family live; the scripts get these as arguments.
DAY_TTL_S = 3 * 86400      # a day's counters outlive the day (a late release still finds them)
MONTH_TTL_S = 35 * 86400
HISTORY_TTL_S = 30 * 86400  # refreshed on every admission; rebuilt from PostgreSQL when gone
PRELOADED_TTL_S = 120       # far longer than an admission takes from its usage row to its check
MARKER_TTL_S = 120          # far longer than a client retries one script call (~240k keys at 1000/s)


def _own_keys(u: store.Usage, k: keys.SubjectKeys) -> tuple[str, ...]:
    """The first six keys of both scripts: day, month, the attempt's method's log and its history in the
    attempt's currency, preloaded sets."""
    return (k.day, k.month, k.velocity_of(u.method), k.history_of(u.method), k.day_preloaded, k.month_preloaded)


@dataclass(frozen=True, slots=True)
class Subject:
    """One subject's share of an attempt: its counted rules (daily/monthly) and velocity windows."""

    merchant_id: str
    customer_id: str | None  # None: the merchant itself
    rules: tuple[LimitRule, ...]
    velocity: tuple[VelocityWindow, ...] = ()  # the windows (and their methods) this attempt's rules count
    # Per method (METHODS order): how long its velocity log keeps an entry, by the longest window of the
    # merchant's rules counting that method (0: not logged). Empty: no velocity log (the merchant subject).
    velocity_keep_ms: tuple[int, ...] = ()
    velocity_max: int = 0  # how many of each method's latest admissions a rebuilt log needs (the largest N)

    def keys(self, u: store.Usage) -> keys.SubjectKeys:
        return keys.subject_keys(self.merchant_id, self.customer_id, u.day, u.currency, METHODS)

    def check_keys(self, u: store.Usage) -> tuple[str, ...]:
        k = self.keys(u)
        return (*_own_keys(u, k), keys.check_marker(k, u.id), *k.velocity, *k.history)

    def release_keys(self, u: store.Usage) -> tuple[str, ...]:
        k = self.keys(u)
        return (*_own_keys(u, k), keys.release_marker(k, u.id), keys.check_marker(k, u.id))

    def own_keep_ms(self, method: str) -> int:
        """How long the velocity log of ``method`` keeps this attempt (0: not logged)."""
        if self.customer_id is None or not self.velocity_keep_ms:
            return 0
        return self.velocity_keep_ms[METHODS.index(method)]


@dataclass(frozen=True, slots=True)
class Counted:
    # Per method, in the attempt's currency, before this attempt (None: the merchant subject).
    history: dict[str, History] | None
    velocity: dict[VelocityWindow, int]  # (window ms, methods) -> their attempts in it, this one included


@dataclass(frozen=True, slots=True)
class Refused:
    rule: LimitRule
    metric: str  # amount | count
    used: int


Result = Counted | Refused


def _method_mask(methods: tuple[str, ...]) -> int:
    return sum(1 << METHODS.index(m) for m in methods)


def _check_args(u: store.Usage, s: Subject, now_ms: int, load: store.Rebuild | None) -> list[Any]:
    customer = s.customer_id is not None
    windows = s.velocity if customer else ()
    keep = s.velocity_keep_ms if customer and s.velocity_keep_ms else (0,) * len(METHODS)
    args: list[Any] = [u.id, now_ms, u.amount, u.currency, u.method, DAY_TTL_S, MONTH_TTL_S,
                       HISTORY_TTL_S, int(customer), s.own_keep_ms(u.method), len(windows), len(s.rules),
                       int(load is not None), PRELOADED_TTL_S, MARKER_TTL_S, len(METHODS), *keep]
    for window_ms, methods in windows:
        args.extend([window_ms, _method_mask(methods)])
    for rule in s.rules:
        args.extend(["d" if rule.window == "daily" else "m", rule.method,
                     -1 if rule.amount_max is None else rule.amount_max,
                     -1 if rule.count_max is None else rule.count_max])
    if load is not None:
        for sums, recent in ((load.day, load.day_recent), (load.month, load.month_recent)):
            fields = _fields(sums)
            args.append(len(fields) // 2)
            args.extend(fields)
            args.append(len(recent))
            args.extend(recent)
        history = load.history or {}
        for method in METHODS:
            h = history.get(method, History(0, 0, 0))
            args.extend([h.count, h.total, h.largest])
        args.append(len(load.velocity))
        for admission_id, age_ms, method in load.velocity:
            args.extend([admission_id, age_ms, METHODS.index(method) + 1])
    return args


def _fields(sums: store.Sums) -> list[Any]:
    """(currency, method) sums -> counter fields, with the all-methods (*) totals per currency."""
    totals: dict[tuple[str, str], tuple[int, int]] = dict(sums)
    for (currency, _method), (amount, count) in sums.items():
        a, n = totals.get((currency, keys.ANY_METHOD), (0, 0))
        totals[(currency, keys.ANY_METHOD)] = (a + amount, n + count)
    out: list[Any] = []
    for (currency, method), (amount, count) in totals.items():
        out.extend([keys.counter_field(currency, method, "a"), amount,
                    keys.counter_field(currency, method, "n"), count])
    return out


def _parse(s: Subject, raw: list[Any]) -> Result | None:
    status = int(raw[0])
    if status == -1:
        return None
    if status == 0:
        return Refused(s.rules[int(raw[1]) - 1], "amount" if int(raw[2]) == 1 else "count", int(raw[3]))
    if s.customer_id is None:
        return Counted(None, {})
    n = len(METHODS)
    history = {m: History(int(raw[1 + 3 * i]), int(raw[2 + 3 * i]), int(raw[3 + 3 * i]))
               for i, m in enumerate(METHODS)}
    return Counted(history, {w: int(c) for w, c in zip(s.velocity, raw[1 + 3 * n:], strict=True)})


StaleKey = tuple[str, str | None, date]  # (merchant, customer or None, day)
STALE_MAX = 100_000
STALE_DROPS_PER_CHECK = 64


PIPELINE_GROUPS_MAX = 256  # requests' calls sent in one shared pipeline


class Counters:
    def __init__(self, redis: aioredis.Redis, pool: asyncpg.Pool) -> None:
        self._redis = redis
        self._pool = pool
        self._scripts = ControlScripts(redis)
        # Subjects whose counters missed an admission or a release while Redis was unreachable: dropped
        # before the next check, so they are rebuilt from PostgreSQL (which has every change).
        self._stale: set[StaleKey] = set()
        self._loading: dict[StaleKey, asyncio.Lock] = {}  # subjects being rebuilt, one reader at a time
        self._pipelines: Grouped[list[tuple[Any, Sequence[str], Sequence[Any]]], list[Any]] = Grouped(
            self._pipeline_group, PIPELINE_GROUPS_MAX)

    def mark_stale(self, u: store.Usage, subjects: Sequence[Subject]) -> bool:
        """Remember ``subjects`` as stale; False when too many are remembered already (then refuse)."""
        if len(self._stale) + len(subjects) > STALE_MAX:
            return False
        self._stale.update((s.merchant_id, s.customer_id, u.day) for s in subjects)
        return True

    async def _drop_stale(self, u: store.Usage, subjects: Sequence[Subject]) -> None:
        """This attempt's stale subjects (they must not be checked on stale counters), then a bounded
        number of the others, so the first request after an outage does not pay for all of them."""
        own = [(s.merchant_id, s.customer_id, u.day) for s in subjects]
        others = [t for _, t in zip(range(STALE_DROPS_PER_CHECK), self._stale - set(own), strict=False)]
        for tag in [t for t in own if t in self._stale] + others:
            merchant_id, customer_id, day = tag
            # The counters only, which hold every currency (a history missing an admission stays as it is).
            k = keys.subject_keys(merchant_id, customer_id, day, u.currency, METHODS)
            try:  # one subject's keys share a slot: one DEL, also on a Cluster
                await self._redis.delete(k.day, k.month, k.day_preloaded, k.month_preloaded)
            except (RedisError, OSError) as exc:
                raise ControlsUnavailable(f"limit counters unavailable: {exc!r}") from exc
            self._stale.discard(tag)

    async def reset(self, usages: Sequence[store.Usage]) -> None:
        """Drop the counters of every subject of ``usages`` (the customer's and the merchant's day and month,
        their preloaded sets, the customer's history in the usage's currency): each is rebuilt from
        PostgreSQL, the record, at its next check. Idempotent. Raises ControlsUnavailable when Redis cannot be
        reached."""
        tags = {(u.merchant_id, customer_id, u.day, u.currency) for u in usages
                for customer_id in (None, u.customer_id)}
        try:
            for merchant_id, customer_id, day, currency in tags:  # one subject's keys share a slot: one DEL each
                k = keys.subject_keys(merchant_id, customer_id, day, currency, METHODS)
                extra = k.history if customer_id is not None else ()
                await self._redis.delete(k.day, k.month, k.day_preloaded, k.month_preloaded, *extra)
        except (RedisError, OSError) as exc:
            raise ControlsUnavailable(f"limit counters unavailable: {exc!r}") from exc

    async def check(self, u: store.Usage, subjects: Sequence[Subject], now_ms: int) -> list[Result]:
        """Check and count every subject; a subject refused or failed leaves the others counted (the
        caller releases them). Raises ControlsUnavailable when Redis cannot answer."""
        if self._stale:
            await self._drop_stale(u, subjects)
        calls = [(self._scripts.check, s.check_keys(u), _check_args(u, s, now_ms, None)) for s in subjects]
        raw = await self._run_or_errors(calls)
        lost = [i for i, r in enumerate(raw) if isinstance(r, BaseException)]
        if lost:  # the answer was lost (e.g. a timeout): asking again is safe, the script answers it once
            for i, r in zip(lost, await self._run_or_errors([calls[i] for i in lost]), strict=True):
                raw[i] = r
        results: list[Result | BaseException | None] = [
            r if isinstance(r, BaseException) else _parse(s, r) for s, r in zip(subjects, raw, strict=True)]
        for i, s in enumerate(subjects):
            if results[i] is None:  # Redis lost this subject's counters (or a new day began): rebuild
                results[i] = await self._check_loading(u, s, now_ms)
        failed = [r for r in results if isinstance(r, BaseException) or r is None]
        if failed:
            undone = await self.undo(u, subjects)
            raise ControlsUnavailable(f"limit counters unavailable: {failed[0]!r}", undone=undone)
        return [r for r in results if isinstance(r, Counted | Refused)]

    async def undo(self, u: store.Usage, subjects: Sequence[Subject]) -> bool:
        """Give back whatever a check of ``subjects`` counted, when its answers are not all known; False when
        Redis did not confirm it (see ``release``)."""
        return await self.release(u, subjects, forget_attempt=True, only_if_counted=True)

    async def _run_or_errors(self, calls: Sequence[tuple[Any, Sequence[str], Sequence[Any]]]) -> list[Any]:
        try:
            return await self._run(calls)
        except ControlsUnavailable as exc:
            return [exc] * len(calls)

    async def _check_loading(self, u: store.Usage, s: Subject, now_ms: int) -> Result | BaseException | None:
        """The check again, with the subject's usage read from PostgreSQL. One reader per subject and day in
        this process: when a busy merchant's day begins, the tasks behind the first find it loaded. Redis
        failing is returned in place, so ``check`` undoes what the other subjects counted."""
        tag = (s.merchant_id, s.customer_id, u.day)
        lock = self._loading.setdefault(tag, asyncio.Lock())
        try:
            async with lock:
                first = (await self._run([(self._scripts.check, s.check_keys(u),
                                           _check_args(u, s, now_ms, None))]))[0]
                if isinstance(first, BaseException) or int(first[0]) != -1:
                    return first if isinstance(first, BaseException) else _parse(s, first)
                async with self._pool.acquire() as conn:
                    # Every method's log is rebuilt, not only this attempt's: all were lost with the hashes.
                    load = await store.usage_sums(conn, s.merchant_id, s.customer_id, u.day, u.currency, u.id,
                                                  max(s.velocity_keep_ms, default=0), s.velocity_max)
                again = (await self._run([(self._scripts.check, s.check_keys(u),
                                           _check_args(u, s, now_ms, load))]))[0]
                return again if isinstance(again, BaseException) else _parse(s, again)
        except ControlsUnavailable as exc:
            return exc
        finally:
            # Dropped when free (the dict stays bounded); a task still queued on it keeps it alive, so at
            # worst two readers overlap, never a herd.
            if not lock.locked() and self._loading.get(tag) is lock:
                del self._loading[tag]

    async def release(self, u: store.Usage, subjects: Sequence[Subject], forget_attempt: bool,
                      only_if_counted: bool = False) -> bool:
        """Give back what ``check`` counted for ``subjects`` (once, however often called); True when Redis
        confirmed it for every subject. Never raises: when Redis cannot be reached the subjects are marked stale
        here, and the caller keeps the usage row as a reset owed (``store.settle_usage``) so that every process
        drops the over-counted counters, not only this one."""
        if not subjects:
            return True
        calls = [(self._scripts.release, s.release_keys(u),
                  [u.id, u.amount, u.currency, u.method, int(s.customer_id is not None), int(forget_attempt),
                   MARKER_TTL_S, int(only_if_counted)])
                 for s in subjects]
        try:
            results = await self._run(calls)
        except ControlsUnavailable:
            results = [None] * len(calls)
        failed = [s for s, r in zip(subjects, results, strict=True) if r is None or isinstance(r, BaseException)]
        if failed:
            self.mark_stale(u, failed)
        return not failed

    async def _run(self, calls: Sequence[tuple[Any, Sequence[str], Sequence[Any]]]) -> list[Any]:
        """One result per call, exceptions in place (a call that raised did or did not run: its caller decides)."""
        try:
            if isinstance(self._redis, RedisCluster):
                return list(await asyncio.gather(*(script(keys=list(k), args=list(a)) for script, k, a in calls),
                                                 return_exceptions=True))
            results = await self._pipeline(calls)
            missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
            if missing:  # Redis restarted and lost its script cache; those calls did not run
                for script in {calls[i][0].sha: calls[i][0] for i in missing}.values():
                    await self._redis.script_load(script.script)
                for i, r in zip(missing, await self._pipeline([calls[i] for i in missing]), strict=True):
                    results[i] = r
            return results
        except (RedisError, OSError) as exc:
            raise ControlsUnavailable(f"limit counters unavailable: {exc!r}") from exc

    async def _pipeline(self, calls: Sequence[tuple[Any, Sequence[str], Sequence[Any]]]) -> list[Any]:
        """The calls in one pipeline shared with every other request's calls made meanwhile (engine/grouping.py):
        Redis runs them one after the other as separate pipelines would, in one round trip."""
        return await self._pipelines.call(list(calls))

    async def _pipeline_group(self, groups: list[list[tuple[Any, Sequence[str], Sequence[Any]]]]) -> list[list[Any]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for calls in groups:
                for script, k, a in calls:
                    pipe.evalsha(script.sha, len(k), *k, *a)
            results = list(await pipe.execute(raise_on_error=False))
        out, start = [], 0
        for calls in groups:
            out.append(results[start:start + len(calls)])
            start += len(calls)
        return out
