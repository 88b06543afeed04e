"""What an answer from the channel means for a payout. Pure: the worker does the I/O.

The rule: only the channel's own word makes a payout final. A timeout, a 5xx or a crash after sending is an
unknown outcome: the payout stays `sending` and is queried. OrderNotFound decides nothing until the last send
is older than the safe delay (the request may still be in flight or queued at the channel); after that the
request never arrived and the same out_payout_no is sent again, which is safe because the channel is idempotent
per out_payout_no (a late copy of the first request cannot pay a second time). Only when `sends_max` sends
never arrived and the last is older than `give_up_s` (longer than any channel still acts on a request) does the
payout fail and its amount go back: earlier, a copy still in flight could land after we unfroze.

A refusal of a create is final only when it is the payout's first send and the channel's refusal is definitive
(its adapter raises UnclearRefusal for the others, such as a "system error"): a refused resend says nothing
about the earlier sends, which may have arrived, so it is asked about like a lost answer. And an answer for
another amount or currency than ours is never booked: the payout is held open for a person. Such an answer still
says the channel holds a payout under our out_payout_no, so the hold records it as accepted (processing): a later
"not found" is then a lookup glitch at the channel, never "it never arrived" (which would resend, and in the end
unfreeze money the channel may pay). A pending payout that no channel could ever take is held too (no_channel).
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


@dataclass(frozen=True, slots=True)
class Hold:
    """Book nothing and keep the payout open (frozen) until a person resolves it. `accepted`: the channel reported
    the payout under our out_payout_no, so it has it (status processing), whatever it answers later."""

    reason: str  # a stable code: amount_mismatch | no_channel
    note: str
    accepted: bool = False
    channel_payout_no: str | None = None
    # What the channel reported (amount_mismatch), kept whole for operators: the note is masked like free text.
    reported_amount_minor: int | None = None
    reported_currency: str | None = None


Decision = Settle | Fail | Poll | Resend | Hold


def reported_mismatch(reported_amount_minor: int | None, reported_currency: str | None, amount_minor: int,
                      currency: str) -> str | None:
    """How the channel's amount or currency differs from ours, or None (also when it reports neither)."""
    if reported_amount_minor is not None and reported_amount_minor != amount_minor:
        return f"the channel reports {reported_amount_minor} minor units, ours is {amount_minor}"
    if reported_currency is not None and reported_currency != currency:
        return f"the channel reports currency {reported_currency}, ours is {currency}"
    return None


def on_result(result: PayoutResult, poll_s: float, amount_minor: int, currency: str) -> Settle | Fail | Poll | Hold:
    """The channel answered create or query with the payout's state (for our amount and currency, we hope)."""
    mismatch = reported_mismatch(result.amount_minor, result.currency, amount_minor, currency)
    if mismatch is not None:
        return Hold("amount_mismatch", f"{result.status.value} at the channel, but {mismatch}", True,
                    result.channel_payout_no, result.amount_minor, result.currency)
    if result.status is PayoutStatus.SUCCEEDED:
        return Settle(result.channel_payout_no)
    if result.status is PayoutStatus.FAILED:
        return Fail(result.failure_code or "channel_failed", result.failure_message or "the channel failed the payout",
                    result.channel_payout_no)
    return Poll(poll_s, "processing at the channel", True, result.channel_payout_no)


def on_create_mismatch(reported_amount_minor: int, reported_currency: str, channel_payout_no: str | None,
                       amount_minor: int, currency: str) -> Hold:
    """The channel answered our create with a payout under our out_payout_no for another amount or currency: it
    has the payout (accepted), and only a person may say what was paid."""
    mismatch = reported_mismatch(reported_amount_minor, reported_currency or None, amount_minor, currency)
    return Hold("amount_mismatch", f"accepted at the channel, but {mismatch or 'its answer differs from ours'}", True,
                channel_payout_no, reported_amount_minor, reported_currency or None)


def on_no_channel(why: str) -> Hold:
    """A pending payout that no channel could ever take as things are configured (not merely a breaker that is
    open): waiting would keep it frozen for good, unseen. Nothing was sent, so a person may fail it safely."""
    return Hold("no_channel", f"no channel can take this payout, nothing was sent: {why}")


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


def on_create_refused(code: str, message: str, sends_before: int, query_s: float) -> Fail | Poll:
    """The channel refused a create definitively. Final only for the payout's first send: after an earlier send
    (which may have arrived) the refusal is about this request alone, so the payout is asked about instead."""
    if sends_before > 0:
        return Poll(query_s, f"send {sends_before + 1} refused ({code}); an earlier send may have arrived: asking")
    return Fail(code, message)
