"""The control gate: limits and risk rules, evaluated before a payment, transfer or payout books.

    admission = await gate.admit(Attempt(..., movement_id=...))  # LimitExceeded / RiskDeclined / ...Unavailable
    async with Booking(admission) as booking:   # gives the usage back if the booking fails before its last step
        async with booker.transaction() as tx:
            await admission.claim(tx.conn)     # AdmissionReleased: the orphan sweep gave it back (orphans.py)
            ... book ...; store admission.record() with the movement
            booking.reached_last_step()        # from here on a failure (at COMMIT, after it) keeps the usage

Order inside ``admit`` and why:
1. Blocklist rules (in memory): a listed customer/instrument is refused before anything is counted.
2. Single-transaction limits (pure).
3. The usage row is COMMITTED to PostgreSQL (limit_usage) before Redis counts it. So whenever Redis
   loses counters, the rebuild from PostgreSQL sees every admission that may still book: at worst one
   racing admission is counted twice (a false refusal), never zero times (an exceeded limit).
4. One Lua check-and-increment per subject (customer, merchant): refuses if a daily/monthly amount or
   count would pass its maximum, else counts; returns velocity counts (attempts of any currency) and the
   customer's history of amounts in the attempt's currency (amounts of two currencies do not compare).
5. Velocity and amount-anomaly rules on those facts; a deny gives the counts back. A velocity or amount-anomaly
   rule scoped to some methods counts only the attempts and amounts of those methods.

Every risk decision is counted (metrics.RISK_DECISIONS); a deny or a limit refusal is also logged (ids, rule,
method: never the customer's instrument).

Redis down: refused (ControlsUnavailable, retryable 503) when a daily/monthly limit, velocity or
amount-anomaly rule binds the attempt, since it cannot be enforced; otherwise admitted uncounted (the usage
row is written and marked ``uncounted_at``; every process's owed-reset loop drops the subjects' counters once
Redis answers again, and they are rebuilt from PostgreSQL).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from types import TracebackType

import asyncpg
import redis.asyncio as aioredis

from accounts.store import Conn
from engine.controls import store
from engine.controls.config import ConfigCache, instrument_digest
from engine.controls.counters import Counted, Counters, Refused, Subject
from engine.controls.errors import AdmissionReleased, ControlsUnavailable, InvalidControl, LimitExceeded, RiskDeclined
from engine.controls.limits import METHODS, LimitRule, check_single
from engine.controls.metrics import LIMIT_REFUSALS, RISK_DECISIONS
from engine.controls.risk import (
    RiskRule,
    RuleDecision,
    VelocityWindow,
    blocklist_decisions,
    counted_decisions,
    velocity_attempts_max,
    velocity_keep_ms,
    velocity_windows,
)
from engine.controls.usage_writer import UsageWriter
from engine.keys import ADMISSION, new_id

log = logging.getLogger(__name__)

KINDS = ("payment", "transfer", "payout")
VELOCITY_LOAD_MAX = 10_000  # admissions per method a lost velocity log is rebuilt from, at most (script arguments)


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
            # Uncounted: the counters may or may not hold it (a rebuild may have read its row), so no
            # decrement: the row stays released with a reset owed.
            given_back = self.counted and await self._counters.release(self._usage, self._subjects,
                                                                       forget_attempt=True)
            await store.settle_usage(conn, self._usage.id, given_back)

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


class Booking:
    """Guards one booking of an admission (None: no gate, nothing to guard). Wrap the booking transaction:

        async with Booking(admission) as booking:
            async with booker.transaction() as tx:
                ...
                booking.reached_last_step()

    An exception before ``reached_last_step`` gives the usage back (the booking did not happen). One at or
    after it (COMMIT failed or its answer was lost, the request was cancelled, post-commit work raised) keeps
    it: the booking may have committed, and usage given back for a booked movement would under-count the
    limit. If the commit did fail, the orphan sweep (orphans.py) finds no movement and gives it back later:
    over-counted for a while, never under."""

    def __init__(self, admission: Admission | None) -> None:
        self._admission = admission
        self._last_step = False

    def reached_last_step(self) -> None:
        """Call as the booking transaction's last statement, right before it commits."""
        self._last_step = True

    def refused(self) -> None:
        """The last step was refused by the database (an error answer: nothing of it committed), e.g. a
        booking of one statement that is its own transaction: a failure gives the usage back again."""
        self._last_step = False

    async def __aenter__(self) -> Booking:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if exc_type is not None and not self._last_step and self._admission is not None:
            await self._admission.release()


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
        self._usage = UsageWriter(pool)

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
        _raise_on_deny(attempt, rules, decisions)
        limits = config.limits.for_attempt(attempt.merchant_id, attempt.method, attempt.currency,
                                           attempt.customer_id is not None)
        try:
            check_single(limits, attempt.amount, attempt.method, attempt.currency)
        except LimitExceeded as exc:
            _log_refusal(attempt, exc)
            raise
        usage = store.Usage(new_id(ADMISSION), attempt.merchant_id, attempt.customer_id,
                            attempt.kind, attempt.method, attempt.currency, attempt.amount, self._today(),
                            attempt.movement_id)
        # The logs of every method this merchant's rules count are kept (and rebuilt) by those rules' windows;
        # this attempt's own rules read them through their (window, methods).
        merchant_rules = config.rules_of(attempt.merchant_id)
        velocity = _Velocity(tuple(velocity_windows(rules)),
                             tuple(velocity_keep_ms(merchant_rules, m) for m in METHODS),
                             velocity_attempts_max(merchant_rules, VELOCITY_LOAD_MAX))
        subjects = _subjects(attempt, limits, velocity)
        await self._usage.insert(usage)
        admission = Admission(self.counters, self._pool, usage, tuple(subjects), tuple(decisions))
        try:
            results = await self.counters.check(usage, subjects, int(self._clock() * 1000))
        except ControlsUnavailable as exc:
            # Nothing that needs a counter binds this attempt: Redis being down must not stop it (the usage
            # row is in PostgreSQL; the subjects' counters are dropped and rebuilt once Redis answers).
            if _needs_counters(attempt, subjects, rules) or not self.counters.mark_stale(usage, subjects):
                async with self._pool.acquire() as conn:
                    await store.settle_usage(conn, usage.id, exc.undone)
                raise
            async with self._pool.acquire() as conn:  # every process's counters are rebuilt once Redis answers
                await store.mark_uncounted(conn, usage.id)
            log.warning("limit counters unavailable; admitted without counting (no counted rule binds)")
            _count_decisions(decisions)
            return Admission(self.counters, self._pool, usage, (), tuple(decisions), counted=False)
        except BaseException:  # e.g. the request was cancelled mid-check: give back whatever was counted
            undone = await asyncio.shield(self.counters.undo(usage, subjects))
            async with self._pool.acquire() as conn:
                await store.settle_usage(conn, usage.id, undone)
            raise
        refused = next((r for r in results if isinstance(r, Refused)), None)
        if refused is not None:
            await self._give_back(usage, subjects, results)
            exceeded = _limit_exceeded(refused, attempt)
            _log_refusal(attempt, exceeded)
            raise exceeded
        facts = results[0]
        if attempt.customer_id is not None and isinstance(facts, Counted):
            decisions += counted_decisions(rules, attempt.amount, attempt.currency, facts.history, facts.velocity)
        if _first_deny(decisions) is not None:
            await self._give_back(usage, subjects, results)
            _raise_on_deny(attempt, rules, decisions)
        _count_decisions(decisions)
        admission.decisions = tuple(decisions)
        return admission

    async def release_admission(self, admission_id: str, *, by_reset: bool = False) -> bool:
        """Give back the usage of an earlier admission by its id (``record()["admission"]``), e.g. a payout
        the channel failed long after its request. False when there is nothing to give back (released
        already, refused, or pruned). By decrement, the usage row stays locked until the counters are given
        back, so two concurrent calls give back once, and a rebuild meanwhile still sees the row (over-counts,
        never under).

        ``by_reset`` is for a retry, when an earlier call may have given the counters back and died before
        its commit (and always for an uncounted admission): the row is released with its counters' reset
        owed, and after the commit the subjects' counters are dropped, to be rebuilt from PostgreSQL (which no
        longer counts it), instead of decremented. So the usage is given back exactly once however long ago
        the earlier call was (a decrement is deduplicated only for the release marker's TTL). The owed-reset
        loop (orphans.reset_owed) resets again after the settle time and settles the row."""
        async with self._pool.acquire() as conn, conn.transaction():
            usage = await store.lock_usage(conn, admission_id)
            if usage is None:
                return False
            by_reset = by_reset or usage.uncounted  # counters that may not hold it are never decremented
            if by_reset:
                await store.release_usage_reset_owed(conn, admission_id)
            else:
                subjects = [Subject(usage.merchant_id, None, ())]
                if usage.customer_id is not None:
                    subjects.append(Subject(usage.merchant_id, usage.customer_id, ()))
                given_back = await self.counters.release(usage, subjects, forget_attempt=False)
                await store.settle_usage(conn, admission_id, given_back)
        if by_reset:
            try:  # at once; the owed-reset loop resets again after the settle time (or when this fails)
                await self.counters.reset([usage])
            except ControlsUnavailable:
                log.warning("counter reset after a release failed; the owed-reset loop retries",
                            extra={"admission": admission_id})
        return True

    async def _give_back(self, usage: store.Usage, subjects: list[Subject], results: list[Counted | Refused]) -> None:
        """A refused attempt: counts back (its velocity entry stays: a refused attempt was still made)."""
        counted = [s for s, r in zip(subjects, results, strict=True) if isinstance(r, Counted)]
        given_back = await asyncio.shield(self.counters.release(usage, counted, forget_attempt=False))
        async with self._pool.acquire() as conn:
            await store.settle_usage(conn, usage.id, given_back)


def _needs_counters(attempt: Attempt, subjects: list[Subject], rules: list[RiskRule]) -> bool:
    """Whether a daily/monthly limit, velocity or amount-anomaly rule binds: then no Redis, no admission."""
    return any(s.rules or s.velocity for s in subjects) or (
        attempt.customer_id is not None and any(r.kind == "amount_anomaly" for r in rules))


@dataclass(frozen=True, slots=True)
class _Velocity:
    windows: tuple[VelocityWindow, ...]  # what this attempt's rules count
    keep_ms: tuple[int, ...]             # per method (METHODS order), by all of the merchant's rules
    attempts_max: int


def _subjects(attempt: Attempt, limits: list[LimitRule], velocity: _Velocity) -> list[Subject]:
    """The customer (first, when there is one: its answer carries the risk facts) and the merchant, each
    with its daily/monthly rules; single-transaction rules need no counter."""
    counted = [r for r in limits if r.window != "single"]
    subjects = [Subject(attempt.merchant_id, None, tuple(r for r in counted if r.scope == "merchant"))]
    if attempt.customer_id is not None:
        subjects.insert(0, Subject(attempt.merchant_id, attempt.customer_id,
                                   tuple(r for r in counted if r.scope == "customer"), velocity.windows,
                                   velocity.keep_ms, velocity.attempts_max))
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


def _first_deny(decisions: list[RuleDecision]) -> RuleDecision | None:
    return next((d for d in decisions if d.decision == "deny"), None)


def _count_decisions(decisions: list[RuleDecision]) -> None:
    for d in decisions:
        RISK_DECISIONS.labels(d.rule_id, d.kind, d.decision).inc()


def _raise_on_deny(attempt: Attempt, rules: list[RiskRule], decisions: list[RuleDecision]) -> None:
    """RiskDeclined for the first deny among ``decisions`` (counted and logged first); nothing when none."""
    denied = _first_deny(decisions)
    if denied is None:
        return
    _count_decisions(decisions)
    rule = next((r for r in rules if r.id == denied.rule_id), None)
    # Ids and the rule only: never the customer's instrument, nor its keyed hash.
    log.info("attempt declined by risk rule", extra={
        "rule_id": denied.rule_id, "rule_name": rule.name if rule is not None else None, "rule_kind": denied.kind,
        "reason": denied.reason, "attempt_kind": attempt.kind, "method": attempt.method,
        "merchant_id": attempt.merchant_id, "movement_id": attempt.movement_id, "amount": attempt.amount,
        "currency": attempt.currency})
    raise RiskDeclined(rule=denied.rule_id, kind=denied.kind, reason=denied.reason)


def _log_refusal(attempt: Attempt, exc: LimitExceeded) -> None:
    LIMIT_REFUSALS.labels(exc.scope, exc.window, exc.metric).inc()
    log.info("attempt refused by limit", extra={
        "scope": exc.scope, "window": exc.window, "metric": exc.metric, "limit_method": exc.method,
        "limit": exc.limit, "used": exc.used, "attempt_kind": attempt.kind, "method": attempt.method,
        "merchant_id": attempt.merchant_id, "movement_id": attempt.movement_id, "amount": attempt.amount,
        "currency": attempt.currency})
