"""What the channel's answers mean for a payout (pure): only the channel's word makes a payout final."""

from __future__ import annotations

from channels.protocol import PayoutResult, PayoutStatus
from engine.payouts.decision import Fail, Poll, Resend, Settle, on_not_found, on_result
from engine.payouts.destination import check_destination, luhn_ok


def test_final_answers_settle_or_fail_and_processing_polls() -> None:
    assert on_result(PayoutResult("n", PayoutStatus.SUCCEEDED, "c1"), 1.0) == Settle("c1")
    failed = on_result(PayoutResult("n", PayoutStatus.FAILED, "c1", "ACCOUNT_INVALID", "closed"), 1.0)
    assert failed == Fail("ACCOUNT_INVALID", "closed", "c1")
    polled = on_result(PayoutResult("n", PayoutStatus.PROCESSING, "c1"), 2.0)
    assert isinstance(polled, Poll) and polled.accepted and polled.delay_s == 2.0


def test_not_found_waits_the_safe_delay_then_resends_then_waits_out_the_window_then_fails() -> None:
    # Too soon after the send: it may still be in flight.
    assert isinstance(on_not_found(False, 1, 0.5, 5, 3, 900), Poll)
    assert isinstance(on_not_found(False, 1, 6, 5, 3, 900), Resend)
    assert isinstance(on_not_found(False, 2, 6, 5, 3, 900), Resend)
    # Every send never arrived, but the last may still land within the channel's request window.
    waiting = on_not_found(False, 3, 6, 5, 3, 900)
    assert isinstance(waiting, Poll) and waiting.delay_s == 894
    assert on_not_found(False, 3, 901, 5, 3, 900) == Fail("never_arrived",
                                                          "the channel never received any of 3 sends")


def test_not_found_after_the_channel_accepted_it_is_never_taken_as_final() -> None:
    assert isinstance(on_not_found(True, 3, 10_000, 5, 3, 900), Poll)


def test_destination_rules() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    card = check_destination("bank_card", "4111 1111 1111 1111", " Li Lei ", None)
    assert (card.number, card.holder_name, card.masked) == ("4111111111111111", "Li Lei", "************1111")
