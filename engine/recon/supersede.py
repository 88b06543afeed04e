"""What a re-run does to the items of the run it supersedes: pure, no I/O.

A corrected or supplementary statement of a channel and date is reconciled as a new run (generation n + 1)
that supersedes the live one (generation n). Both runs are kept; the old one names its successor. The
transaction that creates the new run also saves its items and applies this plan, so at no moment is a
difference open in two live runs, and settlement (which holds a payment back while any item of it is open)
never sees a half-applied re-run. Items are paired by the transaction they compare (``item_key``: our payment,
refund or payout id; the statement's reference when we have no such transaction). For each old item:

- **open**: closed with resolution ``superseded`` (state 'resolved', by the re-run's operator; a superseded run
  counts in no live figure). Its new item, if the new statement compares the same transaction, links back to it
  (``carried_from``) and keeps the state the strategy gives it: a difference that still differs is open in the
  new run only; one the new statement matches is ok. An old open item with no counterpart (the corrected file no
  longer lists that line) is closed the same way.
- **resolved / cleared** otherwise (an operator or a later statement closed it, and any money that moved, moved):
  never reopened. If the new run would open the same outcome again for the same transaction, its new item takes
  the old state, resolution and note and links back, so the difference is closed once, not twice. A different
  outcome on the same transaction is a new difference: open, linked back for the history.
- **resolving** (a desk proposal about its money awaits a second operator): the re-run is refused until the
  proposal is decided (engine/recon/rerun.py), so a proposal never books against a difference that moved runs.
- **ok**: nothing carries; the new item stands on its own (a correction may reveal a new difference).

An old item is carried into at most one new item (the database says so: carried_from is unique).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.recon.matching import Item
from engine.recon.strategy import ACTION_STATE

ItemKey = tuple[str, str]

SUPERSEDED = "superseded"  # the resolution of an item its run's re-run closed
_CLOSED = frozenset({"resolved", "cleared"})


def row_key(kind: str, reference: str, payment_id: str | None, refund_id: str | None,
            payout_id: str | None) -> ItemKey:
    """The transaction an item row compares, as ``item_key`` names it for a fresh item."""
    if kind == "refund" and refund_id:
        return (kind, refund_id)
    if kind == "payout" and payout_id:
        return (kind, payout_id)
    if kind == "payment" and payment_id:
        return (kind, payment_id)
    return (kind, "ref:" + reference)


def item_key(item: Item) -> ItemKey:
    ours = item.ours
    if ours is None:
        return (item.kind, "ref:" + item.reference)
    return row_key(item.kind, item.reference, ours.payment_id if item.kind == "payment" else None, ours.refund_id,
                   ours.payment_id if item.kind == "payout" else None)


@dataclass(frozen=True, slots=True)
class OldItem:
    id: int
    key: ItemKey
    outcome: str
    state: str
    resolution: str | None
    note: str | None

    @property
    def still_open(self) -> bool:
        """Open, or closed by this very re-run before it was interrupted (a run is superseded at most once, so an
        item resolved as superseded was open when the re-run began, and is this run's to carry)."""
        return self.state == "open" or (self.state == "resolved" and self.resolution == SUPERSEDED)


@dataclass(frozen=True, slots=True)
class Carry:
    """What the new item of (kind, reference) takes over from an old one."""

    kind: str
    reference: str
    carried_from: int
    state: str | None  # None: the state the strategy gives
    resolution: str | None
    note: str | None


@dataclass(frozen=True, slots=True)
class Plan:
    carries: list[Carry]
    superseded: list[int]  # old item ids to close as superseded (those still 'open')


def plan(old_run_id: str, old: Sequence[OldItem], new: Sequence[Item]) -> Plan:
    """Pair the old run's items with the new run's by transaction; see the module docstring."""
    by_key = {o.key: o for o in old}
    carries: list[Carry] = []
    for item in new:
        before = by_key.get(item_key(item))
        if before is None:
            continue
        opens = ACTION_STATE[item.action] == "open"
        if before.still_open:
            carries.append(Carry(item.kind, item.reference, before.id, None, None, None))
        elif before.state in _CLOSED and opens:
            if before.outcome == item.outcome.value:
                carries.append(Carry(item.kind, item.reference, before.id, before.state, before.resolution,
                                     f"closed in run {old_run_id}: {before.note or before.state}"))
            else:
                carries.append(Carry(item.kind, item.reference, before.id, None, None, None))
    return Plan(carries, [o.id for o in old if o.state == "open"])


def blocking(old: Sequence[OldItem]) -> list[int]:
    """Old items a re-run must not move: their money waits for a desk proposal's decision."""
    return [o.id for o in old if o.state == "resolving"]
