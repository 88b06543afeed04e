"""The reconciliation strategy table: (channel × txn type × our status × their status × amount) →
(outcome, action). Data, not branches: adding a channel's exception is adding a row.

Statuses are normalised on both sides to: succeeded, pending, closed, failed, missing (no record);
ours also 'late' (closed, then paid: the gateway booked it and refunded it automatically).
``amount`` is 'same' or 'differs' when both sides have the transaction, '*' matches either. The most
specific row wins: an exact channel beats '*', an exact amount beats '*'.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(enum.StrEnum):
    MATCHED = "matched"
    LONG = "long"  # 长款: the channel has it, we do not (as a success)
    SHORT = "short"  # 短款: we have a success, the channel does not
    AMOUNT_MISMATCH = "amount_mismatch"
    STATUS_MISMATCH = "status_mismatch"


class Action(enum.StrEnum):
    ACCEPT = "accept"  # nothing to do
    SUPPLEMENT = "supplement"  # 补单: book the success we missed (amount already checked equal)
    SUSPECT = "suspect"  # list for an operator; cleared if a later statement shows it
    HOLD = "hold"  # exception: settlement of the order waits until an operator resolves it
    INVESTIGATE = "investigate"  # money at the channel we cannot attribute to any order of ours
    IGNORE = "ignore"  # both sides agree nothing moved


# Item state each action leaves behind; 'open' items keep their payment out of settlement.
ACTION_STATE: dict[Action, str] = {
    Action.ACCEPT: "ok", Action.SUPPLEMENT: "resolved", Action.SUSPECT: "open", Action.HOLD: "open",
    Action.INVESTIGATE: "open", Action.IGNORE: "ok",
}


@dataclass(frozen=True, slots=True)
class StrategyRule:
    channel: str
    txn_type: str
    our_status: str
    their_status: str
    amount: str
    outcome: Outcome
    action: Action


Oc, A = Outcome, Action
ANY = "*"


def _r(channel: str, txn_type: str, ours: str, theirs: str, amount: str, outcome: Outcome,
       action: Action) -> StrategyRule:
    return StrategyRule(channel, txn_type, ours, theirs, amount, outcome, action)


STRATEGY: tuple[StrategyRule, ...] = (
    _r(ANY, "payment", "succeeded", "succeeded", "same", Oc.MATCHED, A.ACCEPT),
    _r(ANY, "payment", "succeeded", "succeeded", "differs", Oc.AMOUNT_MISMATCH, A.HOLD),
    _r(ANY, "payment", "succeeded", "closed", ANY, Oc.STATUS_MISMATCH, A.HOLD),
    _r(ANY, "payment", "succeeded", "failed", ANY, Oc.STATUS_MISMATCH, A.HOLD),
    _r(ANY, "payment", "succeeded", "missing", ANY, Oc.SHORT, A.SUSPECT),
    _r(ANY, "payment", "pending", "succeeded", "same", Oc.LONG, A.SUPPLEMENT),
    _r(ANY, "payment", "pending", "succeeded", "differs", Oc.AMOUNT_MISMATCH, A.HOLD),
    # Paid after we closed or failed it: the gateway's late-success path refunds it; an operator checks.
    _r(ANY, "payment", "closed", "succeeded", ANY, Oc.LONG, A.HOLD),
    # ... and once the gateway took it as a late success (booked, auto-refunded): both sides agree.
    _r(ANY, "payment", "late", "succeeded", "same", Oc.MATCHED, A.ACCEPT),
    _r(ANY, "payment", "late", "succeeded", "differs", Oc.AMOUNT_MISMATCH, A.HOLD),
    _r(ANY, "payment", "failed", "succeeded", ANY, Oc.LONG, A.HOLD),
    _r(ANY, "payment", "missing", "succeeded", ANY, Oc.LONG, A.INVESTIGATE),
    _r(ANY, "payment", "pending", "closed", ANY, Oc.MATCHED, A.IGNORE),
    _r(ANY, "payment", "closed", "closed", ANY, Oc.MATCHED, A.IGNORE),
    _r(ANY, "payment", "failed", "failed", ANY, Oc.MATCHED, A.IGNORE),
    _r(ANY, "payment", "missing", "closed", ANY, Oc.MATCHED, A.IGNORE),
    _r(ANY, "refund", "succeeded", "succeeded", "same", Oc.MATCHED, A.ACCEPT),
    _r(ANY, "refund", "succeeded", "succeeded", "differs", Oc.AMOUNT_MISMATCH, A.HOLD),
    _r(ANY, "refund", "succeeded", "failed", ANY, Oc.STATUS_MISMATCH, A.HOLD),
    _r(ANY, "refund", "succeeded", "pending", ANY, Oc.STATUS_MISMATCH, A.SUSPECT),
    _r(ANY, "refund", "succeeded", "missing", ANY, Oc.SHORT, A.SUSPECT),
    _r(ANY, "refund", "pending", "succeeded", ANY, Oc.LONG, A.HOLD),
    _r(ANY, "refund", "missing", "succeeded", ANY, Oc.LONG, A.INVESTIGATE),
    _r(ANY, "refund", "pending", "pending", ANY, Oc.MATCHED, A.IGNORE),
    _r(ANY, "refund", "pending", "failed", ANY, Oc.MATCHED, A.IGNORE),
    _r(ANY, "refund", "failed", "failed", ANY, Oc.MATCHED, A.IGNORE),
    # The bank's statement shows refunds a day before its money moves; we only suspect, not hold.
    _r("banksim", "refund", "succeeded", "missing", ANY, Oc.SHORT, A.SUSPECT),
    # Payouts. Ours 'pending' is a payout the worker has not seen final yet: it will book the channel's word on
    # its next query, so a person only looks if it stays. Booked as paid but failed (or the reverse) at the
    # channel means money went out twice or not at all: held for an operator.
    _r(ANY, "payout", "succeeded", "succeeded", "same", Oc.MATCHED, A.ACCEPT),
    _r(ANY, "payout", "succeeded", "succeeded", "differs", Oc.AMOUNT_MISMATCH, A.HOLD),
    _r(ANY, "payout", "succeeded", "failed", ANY, Oc.STATUS_MISMATCH, A.HOLD),
    _r(ANY, "payout", "succeeded", "missing", ANY, Oc.SHORT, A.SUSPECT),
    _r(ANY, "payout", "pending", "succeeded", ANY, Oc.LONG, A.SUSPECT),
    _r(ANY, "payout", "pending", "failed", ANY, Oc.STATUS_MISMATCH, A.SUSPECT),
    _r(ANY, "payout", "failed", "succeeded", ANY, Oc.STATUS_MISMATCH, A.HOLD),
    _r(ANY, "payout", "failed", "failed", ANY, Oc.MATCHED, A.IGNORE),
    _r(ANY, "payout", "missing", "succeeded", ANY, Oc.LONG, A.INVESTIGATE),
    _r(ANY, "payout", "missing", "failed", ANY, Oc.MATCHED, A.IGNORE),
)

# Anything the table does not name is an exception for a person, never a silent accept.
FALLBACK = (Outcome.STATUS_MISMATCH, Action.HOLD)


def decide(channel: str, txn_type: str, our_status: str, their_status: str,
           amount_same: bool | None) -> tuple[Outcome, Action]:
    """The outcome and action for one comparison; ``amount_same`` is None when one side is missing."""
    amount = ANY if amount_same is None else ("same" if amount_same else "differs")
    best: StrategyRule | None = None
    best_score = -1
    for rule in STRATEGY:
        if rule.txn_type != txn_type or rule.our_status != our_status or rule.their_status != their_status:
            continue
        if rule.channel not in (ANY, channel) or rule.amount not in (ANY, amount):
            continue
        score = (2 if rule.channel != ANY else 0) + (1 if rule.amount != ANY else 0)
        if score > best_score:
            best, best_score = rule, score
    return (best.outcome, best.action) if best is not None else FALLBACK


# ---------------------------------------------------------------- what an adjustment does about a difference

# Money a success moves to us at the channel (a payment) or away from us (a refund, a payout). Our channel
# receivable assumes our side; where the channel's side differs, the receivable is over- or understated by the
# difference: overstated is money the channel will never pay (written off to the loss account), understated is
# money the channel holds that no order of ours explains (booked to suspense until someone attributes it).
MONEY_IN_KINDS = frozenset({"payment"})
WRITE_OFF_CODE, SUSPENSE_CODE = "ADJ_RECON_SHORT_WRITE_OFF", "ADJ_RECON_LONG_SUSPENSE"


def suggested_adjustment(kind: str, our_status: str, their_status: str, our_amount: int | None,
                         their_amount: int | None) -> tuple[str, int] | None:
    """(adjustment code, amount) that makes the ledger take the channel's word, or None when both sides moved
    the same money (nothing to adjust: the difference is explained, not booked)."""
    ours = (our_amount or 0) if our_status == "succeeded" else 0
    theirs = (their_amount or 0) if their_status == "succeeded" else 0
    overstated = ours - theirs if kind in MONEY_IN_KINDS else theirs - ours
    if overstated > 0:
        return WRITE_OFF_CODE, overstated
    if overstated < 0:
        return SUSPENSE_CODE, -overstated
    return None
