"""Circuit breaker transitions; pure, time passed in."""

from __future__ import annotations

from channels.breaker import BreakerPhase, BreakerPolicy, BreakerState, admit, is_admitting, record

POLICY = BreakerPolicy(failures_to_open=3, window_s=10.0, failure_ratio_max=0.5, ratio_calls_min=6, cool_down_s=30.0)


def _after(outcomes: list[tuple[float, bool]]) -> BreakerState:
    state = BreakerState()
    for now_s, ok in outcomes:
        state = record(state, POLICY, now_s, ok)
    return state


def test_breaker_opens_after_a_burst_of_failures_within_the_window() -> None:
    state = _after([(0.0, False), (1.0, False), (2.0, False)])
    assert state.phase is BreakerPhase.OPEN
    assert admit(state, POLICY, 3.0) == (False, state)


def test_failures_spread_beyond_the_window_keep_it_closed() -> None:
    state = _after([(0.0, False), (11.0, False), (22.0, False), (33.0, False)])
    assert state.phase is BreakerPhase.CLOSED


def test_breaker_opens_on_failure_ratio_once_enough_calls_were_seen() -> None:
    policy = BreakerPolicy(failures_to_open=100, window_s=10.0, failure_ratio_max=0.5, ratio_calls_min=6)
    state = BreakerState()
    for index, ok in enumerate([True, False, False, True, False, False]):
        state = record(state, policy, float(index), ok)
    assert state.phase is BreakerPhase.OPEN


def test_successes_keep_a_few_failures_below_the_ratio() -> None:
    state = _after([(0.0, True), (0.1, False), (0.2, True), (0.3, True), (0.4, False), (0.5, True)])
    assert state.phase is BreakerPhase.CLOSED


def test_after_cool_down_exactly_one_probe_goes_through() -> None:
    opened = _after([(0.0, False), (0.0, False), (0.0, False)])
    assert not is_admitting(opened, POLICY, 29.9)
    admitted, probing = admit(opened, POLICY, 30.0)
    assert admitted and probing.phase is BreakerPhase.HALF_OPEN
    assert admit(probing, POLICY, 30.5) == (False, probing), "second call waits for the probe"


def test_probe_success_closes_and_probe_failure_reopens() -> None:
    opened = _after([(0.0, False)] * 3)
    _, probing = admit(opened, POLICY, 31.0)
    assert record(probing, POLICY, 31.2, True) == BreakerState()
    reopened = record(probing, POLICY, 31.2, False)
    assert reopened.phase is BreakerPhase.OPEN and reopened.opened_at_s == 31.2
    assert not is_admitting(reopened, POLICY, 60.0) and is_admitting(reopened, POLICY, 61.2)


def test_a_lost_probe_does_not_keep_the_channel_shut() -> None:
    _, probing = admit(_after([(0.0, False)] * 3), POLICY, 30.0)
    admitted, again = admit(probing, POLICY, 60.0)
    assert admitted and again.probe_started_s == 60.0


def test_late_outcomes_while_open_are_ignored() -> None:
    opened = _after([(0.0, False)] * 3)
    assert record(opened, POLICY, 1.0, True) is opened


def test_remembered_outcomes_are_bounded() -> None:
    state = BreakerState()
    for index in range(1000):
        state = record(state, BreakerPolicy(window_s=10_000.0), index * 0.001, True)
    assert len(state.outcomes) <= 256
