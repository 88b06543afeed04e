"""A circuit breaker per channel, as pure functions over a frozen state; time is passed in.

Closed: every call goes through and outcomes are remembered for `window_s`. A burst of
failures (a count, or a ratio once enough calls were seen) opens it. Open: nothing goes
through until `cool_down_s` passed; then one probe is admitted (half-open). The probe's
success closes the breaker, its failure opens it again for another cool-down.
"""

from __future__ import annotations

import enum

import msgspec

# Outcomes remembered per channel; the ratio needs no more than this to be meaningful.
OUTCOMES_MAX = 256


class BreakerPhase(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    failures_to_open: int = 5
    window_s: float = 10.0
    failure_ratio_max: float = 0.5
    ratio_calls_min: int = 20
    cool_down_s: float = 30.0

    def __post_init__(self) -> None:
        if self.failures_to_open < 1 or self.ratio_calls_min < 1 or self.window_s <= 0 or self.cool_down_s <= 0:
            raise ValueError(f"breaker policy out of range: {self}")


class BreakerState(msgspec.Struct, frozen=True):
    phase: BreakerPhase = BreakerPhase.CLOSED
    # (time_s, succeeded) of recent calls while closed, oldest first, within window_s.
    outcomes: tuple[tuple[float, bool], ...] = ()
    opened_at_s: float | None = None
    probe_started_s: float | None = None


def _opened(now_s: float) -> BreakerState:
    return BreakerState(phase=BreakerPhase.OPEN, opened_at_s=now_s)


def is_admitting(state: BreakerState, policy: BreakerPolicy, now_s: float) -> bool:
    """Whether `admit` would let a call through now; does not take the probe slot."""
    if state.phase is BreakerPhase.CLOSED:
        return True
    if state.phase is BreakerPhase.OPEN:
        assert state.opened_at_s is not None
        return now_s - state.opened_at_s >= policy.cool_down_s
    assert state.probe_started_s is not None
    # A probe that never reported back (crashed worker) must not keep the channel shut forever.
    return now_s - state.probe_started_s >= policy.cool_down_s


def admit(state: BreakerState, policy: BreakerPolicy, now_s: float) -> tuple[bool, BreakerState]:
    """Ask to make one call. Returns whether to go ahead and the state to keep."""
    if not is_admitting(state, policy, now_s):
        return False, state
    if state.phase is BreakerPhase.CLOSED:
        return True, state
    return True, BreakerState(phase=BreakerPhase.HALF_OPEN, probe_started_s=now_s)


def record(state: BreakerState, policy: BreakerPolicy, now_s: float, succeeded: bool) -> BreakerState:
    """Remember one call's outcome. Late outcomes of calls admitted before opening are ignored."""
    if state.phase is BreakerPhase.HALF_OPEN:
        return BreakerState() if succeeded else _opened(now_s)
    if state.phase is BreakerPhase.OPEN:
        return state
    horizon_s = now_s - policy.window_s
    outcomes = tuple(o for o in state.outcomes if o[0] > horizon_s)[-(OUTCOMES_MAX - 1) :]
    outcomes += ((now_s, succeeded),)
    failures = sum(1 for _, ok in outcomes if not ok)
    if failures >= policy.failures_to_open:
        return _opened(now_s)
    if len(outcomes) >= policy.ratio_calls_min and failures / len(outcomes) > policy.failure_ratio_max:
        return _opened(now_s)
    return BreakerState(outcomes=outcomes)
