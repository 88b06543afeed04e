"""What an answer from the channel means for a payout. Pure: the worker does the I/O.

The rule: only the channel's own word makes a payout final. A timeout, a 5xx or a crash after sending is an
unknown outcome: the payout stays `sending` and is queried. OrderNotFound decides nothing until the last send
is older than the safe delay (the request may still be in flight or queued at the channel); after that the
request never arrived and the same out_payout_no is sent again, which is safe because the channel is idempotent
per out_payout_no (a late copy of the first request cannot pay a second time). Only when `sends_max` sends
never arrived and the last is older than `give_up_s` (longer than any channel still acts on a request) does the
payout fail and its amount go back: earlier, a copy still in flight could land after we unfroze.
"""

from __future__ import annotations

from dataclasses import dataclass

from channels.protocol import PayoutResult, PayoutStatus


@dataclass(frozen=True, slots=True)
class Settle:
    channel_payout_no: str | None


@dataclass(frozen=True, slots=True)
class Fail:
    code: str
    message: str
    channel_payout_no: str | None = None


@dataclass(frozen=True, slots=True)
class Poll:
    """Ask again after `delay_s`; `accepted`: the channel has it (status processing)."""

    delay_s: float
    note: str
    accepted: bool = False
    channel_payout_no: str | None = None


@dataclass(frozen=True, slots=True)
class Resend:
    note: str


Decision = Settle | Fail | Poll | Resend


def on_result(result: PayoutResult, poll_s: float) -> Settle | Fail | Poll:
    """The channel answered create or query with the payout's state."""
    if result.status is PayoutStatus.SUCCEEDED:
        return Settle(result.channel_payout_no)
    if result.status is PayoutStatus.FAILED:
        return Fail(result.failure_code or "channel_failed", result.failure_message or "the channel failed the payout",
                    result.channel_payout_no)
    return Poll(poll_s, "processing at the channel", True, result.channel_payout_no)


def on_not_found(accepted_before: bool, sends: int, since_last_send_s: float, safe_s: float,
                 sends_max: int, give_up_s: float) -> Decision:
    """The channel says it has no payout under our number."""
    if accepted_before:
        # It accepted this payout earlier: a lookup glitch at the channel, not a fact. Ask again later.
        return Poll(safe_s or 1.0, "accepted earlier, now not found: asking again")
    if since_last_send_s < safe_s:
        return Poll(safe_s - since_last_send_s, "not found yet; the last send may still be in flight")
    if sends < sends_max:
        return Resend(f"send {sends} never arrived; sending the same out_payout_no again")
    if since_last_send_s < give_up_s:
        return Poll(give_up_s - since_last_send_s, f"none of {sends} sends arrived; waiting out the request window")
    return Fail("never_arrived", f"the channel never received any of {sends} sends")
