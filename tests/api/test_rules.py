"""The pure rules: state machine tables, fee rounding, proportional fee refunds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import IllegalTransition
from engine.merchants.pricing import Pricing, fee_refunded_after
from engine.payments.states import (
    FINAL,
    NEW,
    PAYMENT_TRANSITIONS,
    PaymentEvent,
    PaymentStatus,
    next_payment_status,
)


def test_final_payment_states_take_no_events() -> None:
    for status in FINAL:
        for event in PaymentEvent:
            with pytest.raises(IllegalTransition):
                next_payment_status(status, event)


def test_unpaid_payments_close() -> None:
    assert next_payment_status(PaymentStatus.AWAITING_PAYMENT, PaymentEvent.CLOSE) is PaymentStatus.CLOSED
    assert all(to != NEW for to in PAYMENT_TRANSITIONS.values())


def test_fee_rounds_half_up_and_never_exceeds_the_amount() -> None:
    assert Pricing(fee_bps=60).fee_for(1999) == 12  # 11.994
    assert Pricing(fee_bps=50).fee_for(100) == 1  # 0.5 -> 1
    assert Pricing(fee_bps=50).fee_for(99) == 0  # 0.495 -> 0
    assert Pricing(fee_bps=0, fee_fixed_minor=500).fee_for(100) == 100


@given(st.integers(1, 10**15), st.integers(0, 10_000), st.lists(st.integers(1, 10**6), max_size=20))
def test_fee_refund_shares_add_up_to_the_fee_on_a_full_refund(amount: int, bps: int, parts: list[int]) -> None:
    fee = Pricing(fee_bps=bps).fee_for(amount)
    refunded, shares = 0, []
    for part in parts:
        part = min(part, amount - refunded)
        if part == 0:
            break
        shares.append(fee_refunded_after(fee, amount, refunded + part) - fee_refunded_after(fee, amount, refunded))
        refunded += part
    shares.append(fee_refunded_after(fee, amount, amount) - fee_refunded_after(fee, amount, refunded))
    assert all(s >= 0 for s in shares) and sum(shares) == fee
