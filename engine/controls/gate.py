"""The control gate: limits and risk rules, evaluated before a payment, transfer or payout books.

    admission = await gate.admit(Attempt(..., movement_id=...))  # LimitExceeded / RiskDeclined / ...Unavailable
    try:
        async with booker.transaction() as tx:
            await admission.claim(tx.conn)     # AdmissionReleased: the orphan sweep gave it back (orphans.py)
            ... book ...; store admission.record() with the movement
    except BaseException:
        await admission.release()                # the booking did not happen: give the usage back
        raise

Order inside ``admit`` and why:
1. Blocklist rules (in memory): a listed customer/instrument is refused before anything is counted.
2. Single-transaction limits (pure).
3. The usage row is COMMITTED to PostgreSQL (limit_usage) before Redis counts it. So whenever Redis
   loses counters, the rebuild from PostgreSQL sees every admission that may still book: at worst one
   racing admission is counted twice (a false refusal), never zero times (an exceeded limit).
4. One Lua check-and-increment per subject (customer, merchant): refuses if a daily/monthly amount or
   count would pass its maximum, else counts; returns velocity counts and the customer's history.
5. Velocity and amount-anomaly rules on those facts; a deny gives the counts back.

Redis down: refused (ControlsUnavailable, retryable 503) when a daily/monthly limit, velocity or
amount-anomaly rule binds the attempt, since it cannot be enforced; otherwise admitted uncounted (the usage
row is written; the subjects' counters are dropped once Redis answers again, and rebuilt from PostgreSQL).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import asyncpg
import redis.asyncio as aioredis

from accounts.store import Conn
from engine.controls import store
from engine.controls.config import ConfigCache, instrument_digest
from engine.controls.counters import Counted, Counters, Refused, Subject
from engine.controls.errors import AdmissionReleased, ControlsUnavailable, InvalidControl, LimitExceeded, RiskDeclined
from engine.controls.limits import METHODS, LimitRule, check_single
from engine.controls.risk import (
    RiskRule,
    RuleDecision,
    blocklist_decisions,
    counted_decisions,
    velocity_attempts_max,
    velocity_windows_ms,
)

log = logging.getLogger(__name__)

KINDS = ("payment", "transfer", "payout")
ADMISSION_PREFIX = "adm_"
VELOCITY_LOAD_MAX = 10_000  # admissions a lost velocity log is rebuilt from, at most (script arguments)


@dataclass(frozen=True, slots=True)
class Attempt:
    kind: str        # "payment" | "transfer" | "payout"
    method: str      # "wallet" | "channel" | "transfer" | "payout"
    merchant_id: str
    customer_id: str | None
    amount: int      # minor units
    currency: str
    instrument: str | None = None  # card/bank account number or channel payer id; only its keyed hash is used
    # The payment / transfer / payout id the booking will use: the orphan sweep (orphans.py) looks it up to
    # tell an admission whose process died before booking from one that booked. None: never swept.
    movement_id: str | None = None


class Admission:
    """An admitted attempt: its risk decisions and the usage it counted (until ``release``)."""

    def __init__(self, counters: Counters, pool: asyncpg.Pool, usage: store.Usage, subjects: tuple[Subject, ...],
                 decisions: tuple[RuleDecision, ...], counted: bool = True) -> None:
        self._counters = counters
        self._pool = pool
        self._usage = usage
        self._subjects = subjects  # empty when not counted: nothing to give back in Redis
        self.decisions = decisions
        self.counted = counted
        self._released = False

    @property
    def id(self) -> str:
        return self._usage.id

    @property
    def review(self) -> bool:
        return any(d.decision == "review" for d in self.decisions)

    async def release(self) -> None:
        """Give the counted usage back (the booking did not happen). Idempotent; shielded so a cancelled
        request cannot leave it half done. Redis first, then the record: a rebuild in between can only
        over-count this admission, never drop one that still holds."""
        if self._released:
            return
        self._released = True
        await asyncio.shield(self._release())

    async def _release(self) -> None:
        # The row stays locked while the counters are given back: the orphan sweep (which locks it too) either
        # released it already (then there is nothing left to give back) or waits and then finds it gone.
        async with self._pool.acquire() as conn, conn.transaction():
            if await store.lock_usage(conn, self._usage.id) is None:
                return
            await self._counters.release(self._usage, self._subjects, forget_attempt=True)
            await store.delete_usage(conn, self._usage.id)

    async def claim(self, conn: Conn) -> None:
        """Claim the admission in the booking transaction ``conn`` (before it commits): raises
        AdmissionReleased when the orphan sweep gave its usage back already (the booking must not happen)."""
        if not await store.claim_usage(conn, self._usage.id):
            raise AdmissionReleased(self._usage.id)

    def record(self) -> dict[str, object]:
        """The JSON to store with the movement: risk decisions and the limits counted against."""
        return {
            "admission": self._usage.id,
            "accounting_date": self._usage.day.isoformat(),
            "review": self.review,
            "counted": self.counted,
            "decisions": [d.to_json() for d in self.decisions],
            "limits": [_limit_json(r) for s in self._subjects for r in s.rules],
        }


def _limit_json(rule: LimitRule) -> dict[str, object]:
    return {"scope": rule.scope, "window": rule.window, "method": rule.method, "currency": rule.currency,
            "amount_max": rule.amount_max, "count_max": rule.count_max}


class ControlGate:
    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, *, today: Callable[[], date],
                 blocklist_secret: str, config_ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self._pool = pool
        self._today = today
        self._secret = blocklist_secret
        self._clock = clock
        self.config = ConfigCache(pool, config_ttl_s)
        self.counters = Counters(redis, pool)

    def digest(self, list_: str, value: str) -> str:
        return instrument_digest(self._secret, list_, value)

    async def admit(self, attempt: Attempt) -> Admission:
        """Admit the attempt (its usage counted) or raise LimitExceeded / RiskDeclined with nothing counted;
        ControlsUnavailable (retryable) when the counters cannot be reached."""
        _check_attempt(attempt)
        config = await self.config.get()
        rules = config.rules_for(attempt.merchant_id, attempt.method)
        listed = {"customer": attempt.customer_id is not None
                  and ("customer", self.digest("customer", attempt.customer_id)) in config.blocklist,
                  "instrument": attempt.instrument is not None
                  and ("instrument", self.digest("instrument", attempt.instrument)) in config.blocklist}
        decisions = blocklist_decisions(rules, listed)
        _raise_on_deny(decisions)
        limits = config.limits.for_attempt(attempt.merchant_id, attempt.method, attempt.currency,
                                           attempt.customer_id is not None)
        check_single(limits, attempt.amount, attempt.method, attempt.currency)
        usage = store.Usage(ADMISSION_PREFIX + secrets.token_hex(12), attempt.merchant_id, attempt.customer_id,
                            attempt.kind, attempt.method, attempt.currency, attempt.amount, self._today(),
                            attempt.movement_id)
        windows = tuple(velocity_windows_ms(rules))
        subjects = _subjects(attempt, limits, windows, velocity_attempts_max(rules, VELOCITY_LOAD_MAX))
        async with self._pool.acquire() as conn:
            await store.insert_usage(conn, usage)
        admission = Admission(self.counters, self._pool, usage, tuple(subjects), tuple(decisions))
        try:
            results = await self.counters.check(usage, subjects, int(self._clock() * 1000), max(windows, default=0))
        except ControlsUnavailable:
            # Nothing that needs a counter binds this attempt: Redis being down must not stop it (the usage
            # row is in PostgreSQL; the subjects' counters are dropped and rebuilt once Redis answers).
            if _needs_counters(attempt, subjects, rules) or not self.counters.mark_stale(usage, subjects):
                async with self._pool.acquire() as conn:
                    await store.delete_usage(conn, usage.id)
                raise
            log.warning("limit counters unavailable; admitted without counting (no counted rule binds)")
            return Admission(self.counters, self._pool, usage, (), tuple(decisions), counted=False)
        except BaseException:  # e.g. the request was cancelled mid-check: give back whatever was counted
            await asyncio.shield(self.counters.undo(usage, subjects))
            async with self._pool.acquire() as conn:
                await store.delete_usage(conn, usage.id)
            raise
        refused = next((r for r in results if isinstance(r, Refused)), None)
        if refused is not None:
            await self._give_back(usage, subjects, results)
            raise _limit_exceeded(refused, attempt)
        facts = results[0]
        if attempt.customer_id is not None and isinstance(facts, Counted):
            decisions += counted_decisions(rules, attempt.amount, facts.history, facts.velocity)
        try:
            _raise_on_deny(decisions)
        except RiskDeclined:
            await self._give_back(usage, subjects, results)
            raise
        admission.decisions = tuple(decisions)
        return admission

    async def release_admission(self, admission_id: str) -> bool:
        """Give back the usage of an earlier admission by its id (``record()["admission"]``), e.g. a payout
        the channel failed long after its request. False when there is nothing to give back (released
        already, refused, or pruned). The usage row stays locked until the counters are given back, so two
        concurrent calls give back once, and a rebuild meanwhile still sees the row (over-counts, never under)."""
        async with self._pool.acquire() as conn, conn.transaction():
            usage = await store.lock_usage(conn, admission_id)
            if usage is None:
                return False
            subjects = [Subject(usage.merchant_id, None, ())]
            if usage.customer_id is not None:
                subjects.append(Subject(usage.merchant_id, usage.customer_id, ()))
            await self.counters.release(usage, subjects, forget_attempt=False)
            await store.delete_usage(conn, admission_id)
        return True

    async def _give_back(self, usage: store.Usage, subjects: list[Subject], results: list[Counted | Refused]) -> None:
        """A refused attempt: counts back (its velocity entry stays: a refused attempt was still made)."""
        counted = [s for s, r in zip(subjects, results, strict=True) if isinstance(r, Counted)]
        await asyncio.shield(self.counters.release(usage, counted, forget_attempt=False))
        async with self._pool.acquire() as conn:
            await store.delete_usage(conn, usage.id)


def _needs_counters(attempt: Attempt, subjects: list[Subject], rules: list[RiskRule]) -> bool:
    """Whether a daily/monthly limit, velocity or amount-anomaly rule binds: then no Redis, no admission."""
    return any(s.rules or s.velocity_ms for s in subjects) or (
        attempt.customer_id is not None and any(r.kind == "amount_anomaly" for r in rules))


def _subjects(attempt: Attempt, limits: list[LimitRule], windows: tuple[int, ...],
              velocity_max: int) -> list[Subject]:
    """The customer (first, when there is one: its answer carries the risk facts) and the merchant, each
    with its daily/monthly rules; single-transaction rules need no counter."""
    counted = [r for r in limits if r.window != "single"]
    subjects = [Subject(attempt.merchant_id, None, tuple(r for r in counted if r.scope == "merchant"))]
    if attempt.customer_id is not None:
        subjects.insert(0, Subject(attempt.merchant_id, attempt.customer_id,
                                   tuple(r for r in counted if r.scope == "customer"), windows, velocity_max))
    return subjects


def _limit_exceeded(refused: Refused, attempt: Attempt) -> LimitExceeded:
    amount = refused.metric == "amount"
    limit = refused.rule.amount_max if amount else refused.rule.count_max
    assert limit is not None, "the script refuses only on a configured maximum"
    return LimitExceeded(scope=refused.rule.scope, window=refused.rule.window, metric=refused.metric,
                         method=refused.rule.method, currency=attempt.currency, limit=limit, used=refused.used,
                         attempted=attempt.amount if amount else 1)


def _check_attempt(attempt: Attempt) -> None:
    """Callers pass validated values; a wrong one here is a wiring bug, reported as InvalidControl."""
    if attempt.kind not in KINDS:
        raise InvalidControl("kind", f"unknown attempt kind {attempt.kind!r}")
    if attempt.method not in METHODS:
        raise InvalidControl("method", f"unknown method {attempt.method!r}")
    if attempt.amount <= 0:
        raise InvalidControl("amount", "amount must be positive")


def _raise_on_deny(decisions: list[RuleDecision]) -> None:
    for d in decisions:
        if d.decision == "deny":
            raise RiskDeclined(rule=d.rule_id, kind=d.kind, reason=d.reason)
