"""Matching a parsed statement against our transactions: pure, no I/O.

Lines are normalised first (statuses to the strategy table's words, amounts checked positive), the
file as a whole is checked to be the one asked for, then every line is matched by our reference and
every success of ours the file lacks becomes a 'missing on their side' comparison. What each
comparison means and what to do about it comes from ``strategy.decide``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from channels.protocol import ChannelStatus, PayoutStatus, RefundStatus, Statement, StatementKind
from engine.recon.strategy import Action, Outcome, decide

# More than this share of lines dated another day means the file is for another day.
FOREIGN_DATE_SHARE_MAX = 0.5

_THEIR_STATUS: dict[str, str] = {
    ChannelStatus.SUCCEEDED: "succeeded", ChannelStatus.REFUNDED: "succeeded", ChannelStatus.PENDING: "pending",
    ChannelStatus.CLOSED: "closed", ChannelStatus.FAILED: "failed",
}
_THEIR_REFUND_STATUS: dict[str, str] = {
    RefundStatus.SUCCEEDED: "succeeded", RefundStatus.PROCESSING: "pending", RefundStatus.FAILED: "failed",
}
_THEIR_PAYOUT_STATUS: dict[str, str] = {
    PayoutStatus.SUCCEEDED: "succeeded", PayoutStatus.PROCESSING: "pending", PayoutStatus.FAILED: "failed",
}
_KIND_TABLES: dict[StatementKind, tuple[str, dict[str, str]]] = {
    StatementKind.REFUND: ("refund", _THEIR_REFUND_STATUS), StatementKind.PAYOUT: ("payout", _THEIR_PAYOUT_STATUS),
}
OUR_PAYMENT_STATUS: dict[str, str] = {
    "succeeded": "succeeded", "pending_voucher": "pending", "awaiting_payment": "pending", "closed": "closed",
    "failed": "failed",
}
OUR_REFUND_STATUS: dict[str, str] = {"succeeded": "succeeded", "pending": "pending", "failed": "failed"}


class WrongStatement(Exception):
    """The file is not the statement asked for (another channel or another day): nothing is processed."""


@dataclass(frozen=True, slots=True)
class TheirLine:
    kind: str  # payment | refund | payout
    reference: str
    channel_txn_id: str
    amount_minor: int
    currency: str
    status: str


@dataclass(frozen=True, slots=True)
class OurTxn:
    kind: str
    reference: str
    payment_id: str
    refund_id: str | None
    merchant_id: str
    status: str  # normalised
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class Item:
    kind: str
    reference: str
    channel_txn_id: str | None
    ours: OurTxn | None
    theirs: TheirLine | None
    outcome: Outcome
    action: Action

    @property
    def our_status(self) -> str:
        return self.ours.status if self.ours else "missing"

    @property
    def their_status(self) -> str:
        return self.theirs.status if self.theirs else "missing"


@dataclass(frozen=True, slots=True)
class Rejected:
    """A line that parsed but cannot be used (e.g. a non-positive amount)."""

    reference: str
    reason: str


def check_statement(statement: Statement, channel: str, day: date) -> None:
    """Raise WrongStatement unless the file is ``channel``'s statement for ``day``."""
    if statement.channel != channel:
        raise WrongStatement(f"statement is for channel {statement.channel!r}, not {channel!r}")
    if statement.day != day:
        raise WrongStatement(f"statement is for {statement.day}, not {day}")
    if statement.lines:
        foreign = sum(1 for line in statement.lines if line.occurred_at.date() != day)
        if foreign / len(statement.lines) > FOREIGN_DATE_SHARE_MAX:
            raise WrongStatement(f"{foreign} of {len(statement.lines)} lines are dated another day than {day}")


def normalise(statement: Statement) -> tuple[list[TheirLine], list[Rejected]]:
    lines: list[TheirLine] = []
    rejected: list[Rejected] = []
    for line in statement.lines:
        refund = line.kind is StatementKind.REFUND
        reference = (line.out_refund_no or "") if refund else line.out_trade_no
        if line.kind is StatementKind.PAYOUT:
            reference = line.out_payout_no or line.out_trade_no
        if line.amount_minor <= 0:
            rejected.append(Rejected(reference, f"amount {line.amount_minor} is not positive"))
            continue
        kind, table = _KIND_TABLES.get(line.kind, ("payment", _THEIR_STATUS))
        lines.append(TheirLine(kind, reference, line.channel_txn_id, line.amount_minor, line.currency,
                               table.get(line.status, str(line.status))))
    return lines, rejected


def _key(kind: str, ours: OurTxn | None, reference: str) -> tuple[str, str]:
    """Our object id when we know the transaction (one payment may be named by several references)."""
    if ours is None:
        return (kind, "ref:" + reference)
    return (kind, ours.refund_id if kind == "refund" and ours.refund_id else ours.payment_id)


def match(channel: str, lines: Sequence[TheirLine], found: Mapping[tuple[str, str], OurTxn],
          expected: Sequence[OurTxn]) -> tuple[list[Item], list[TheirLine]]:
    """Items for every line and every expected success the file lacks; plus duplicate lines.

    ``found`` maps (kind, reference as in the file) to our transaction; ``expected`` are our successes
    of the statement's date, which the file should all contain."""
    items: list[Item] = []
    duplicates: list[TheirLine] = []
    seen: set[tuple[str, str]] = set()
    for line in lines:
        ours = found.get((line.kind, line.reference))
        key = _key(line.kind, ours, line.reference)
        if key in seen:
            duplicates.append(line)
            continue
        seen.add(key)
        same = None if ours is None else (ours.amount_minor, ours.currency) == (line.amount_minor, line.currency)
        outcome, action = decide(channel, line.kind, ours.status if ours else "missing", line.status, same)
        items.append(Item(line.kind, line.reference, line.channel_txn_id, ours, line, outcome, action))
    for txn in expected:
        key = _key(txn.kind, txn, txn.reference)
        if key in seen:
            continue
        seen.add(key)
        outcome, action = decide(channel, txn.kind, txn.status, "missing", None)
        items.append(Item(txn.kind, txn.reference, None, txn, None, outcome, action))
    return items, duplicates


def totals(lines: Sequence[TheirLine], expected: Sequence[OurTxn]) -> dict[str, dict[str, int]]:
    """Summary level: the file's successes vs ours, count and amount per kind."""
    out: dict[str, dict[str, int]] = {}
    for kind in ("payment", "refund", "payout"):
        theirs = [line.amount_minor for line in lines if line.kind == kind and line.status == "succeeded"]
        ours = [t.amount_minor for t in expected if t.kind == kind]
        out[kind] = {"file_count": len(theirs), "file_amount": sum(theirs), "our_count": len(ours),
                     "our_amount": sum(ours), "difference": sum(theirs) - sum(ours)}
    return out
