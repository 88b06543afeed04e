"""What the channel's answers mean for a payout (pure): only the channel's word makes a payout final."""

from __future__ import annotations

from channels.protocol import PayoutResult, PayoutStatus
from engine.payouts.decision import Fail, Hold, Poll, Resend, Settle, on_create_refused, on_not_found, on_result
from engine.payouts.destination import check_destination, luhn_ok, mask_digits


def test_final_answers_settle_or_fail_and_processing_polls() -> None:
    assert on_result(PayoutResult("n", PayoutStatus.SUCCEEDED, "c1"), 1.0, 100, "CNY") == Settle("c1")
    failed = on_result(PayoutResult("n", PayoutStatus.FAILED, "c1", "ACCOUNT_INVALID", "closed"), 1.0, 100, "CNY")
    assert failed == Fail("ACCOUNT_INVALID", "closed", "c1")
    polled = on_result(PayoutResult("n", PayoutStatus.PROCESSING, "c1"), 2.0, 100, "CNY")
    assert isinstance(polled, Poll) and polled.accepted and polled.delay_s == 2.0
    same = PayoutResult("n", PayoutStatus.SUCCEEDED, "c1", amount_minor=100, currency="CNY")
    assert on_result(same, 1.0, 100, "CNY") == Settle("c1")


def test_an_answer_for_another_amount_or_currency_is_held_whatever_its_status() -> None:
    for status in PayoutStatus:
        more = on_result(PayoutResult("n", status, "c1", amount_minor=101, currency="CNY"), 1.0, 100, "CNY")
        assert isinstance(more, Hold) and more.reason == "amount_mismatch" and "101" in more.note
        dollars = on_result(PayoutResult("n", status, "c1", amount_minor=100, currency="USD"), 1.0, 100, "CNY")
        assert isinstance(dollars, Hold) and dollars.reason == "amount_mismatch" and "USD" in dollars.note


def test_a_refused_create_fails_only_the_first_send() -> None:
    assert on_create_refused("ACQ.INVALID_PARAMETER", "bad", 0, 0.5) == Fail("ACQ.INVALID_PARAMETER", "bad")
    # A resend: the first send may have arrived, whatever this refusal says about the second.
    asked = on_create_refused("ACQ.INVALID_PARAMETER", "bad", 1, 0.5)
    assert isinstance(asked, Poll) and asked.delay_s == 0.5 and not asked.accepted


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


def test_long_digit_runs_are_masked_for_logs() -> None:
    text = "Failing row contains (po_1, 4111111111111111, 622202123, Li Lei, 2026-11-21 10:00:00, 12345)."
    assert mask_digits(text) == ("Failing row contains (po_1, ************1111, *****2123, Li Lei, "
                                 "2026-11-21 10:00:00, 12345).")
