"""Sub-account routing for split (hot) accounts: which sub a leg lands on, and resize sweeps.

Pure: everything comes in as arguments (layouts, candidate balances) and a routed entry or a plan
comes out. A credit goes to the sub picked from the transaction number (even spread, the same
transaction always picks the same sub). A debit starts at that sub and takes the first sub whose
available balance (plus what this entry already put there) covers it; when no single sub covers
it but the subs together do, the debit is split over several subs in the same entry (see
``route_entry``), so the entry stays one atomic, balanced booking with no extra sweep entry.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from accounts.errors import CurrencyMismatch, InsufficientFunds, InvalidSplitCount
from accounts.journal import EntryDraft, LegDraft
from accounts.model import AccountId, Side, signed_delta

SPLIT_MIN = 2
SPLIT_MAX = 256
# Entries with this code name sub-accounts on purpose (sweeps between siblings); never rerouted.
SWEEP_CODE = "SWEEP"


@dataclass(frozen=True, slots=True)
class SubAccount:
    id: AccountId
    index: int
    hot: bool
    floor_minor: int | None  # lowest allowed available balance; None = unlimited overdraft


@dataclass(frozen=True, slots=True)
class SplitLayout:
    """A split parent and its active subs, ordered by index (retired subs are not listed)."""

    parent_id: AccountId
    currency: str
    normal_side: Side
    subs: tuple[SubAccount, ...]


@dataclass(frozen=True, slots=True)
class NeedBalances:
    """Routing a debit needs the available balances of these subs; ask again with them."""

    account_ids: frozenset[AccountId]


def check_split_count(into: object) -> int:
    if isinstance(into, bool) or not isinstance(into, int) or not SPLIT_MIN <= into <= SPLIT_MAX:
        raise InvalidSplitCount(into, SPLIT_MIN, SPLIT_MAX)
    return into


def sub_for_txn(txn_no: str, sub_count: int) -> int:
    """Index of the sub a transaction lands on. The low digits of a transaction number are not
    evenly spread (10**6 is a multiple of 16), so the whole number is hashed."""
    return zlib.crc32(txn_no.encode("ascii")) % sub_count


def route_entry(entry: EntryDraft, layouts: Mapping[AccountId, SplitLayout],
                available: Mapping[AccountId, int]) -> EntryDraft | NeedBalances:
    """Reroute legs that name a split parent onto its subs.

    ``available`` holds the subs' available balances (balance - frozen, projected for hot subs);
    when a debit needs some that are missing, NeedBalances names them. Raises CurrencyMismatch
    for a leg in another currency than the parent and InsufficientFunds (naming the parent) when
    all subs together cannot cover a debit. Legs keep their positions; the extra pieces of a
    debit split over several subs are appended after the original legs.
    """
    if entry.txn_code == SWEEP_CODE or not any(leg.account_id in layouts for leg in entry.legs):
        return entry
    legs = list(entry.legs)
    extra: list[LegDraft] = []
    # Net this entry already moved on each sub. The posting function applies legs of one account
    # in leg order, so counting earlier legs only is exact for credits and conservative for the
    # appended pieces (which run last).
    moved: defaultdict[AccountId, int] = defaultdict(int)
    for position, leg in enumerate(entry.legs):
        layout = layouts.get(leg.account_id)
        if layout is None:
            continue
        if leg.currency != layout.currency:
            raise CurrencyMismatch(layout.currency, leg.currency, layout.parent_id)
        start = sub_for_txn(entry.txn_no, len(layout.subs))
        delta = signed_delta(leg.side, layout.normal_side, leg.amount_minor)
        if delta >= 0:
            sub = layout.subs[start]
            legs[position] = LegDraft(sub.id, leg.side, leg.amount_minor, leg.currency)
            moved[sub.id] += delta
            continue
        pieces = _debit_pieces(layout, start, -delta, moved, available)
        if isinstance(pieces, NeedBalances):
            return pieces
        for n, (sub_id, amount) in enumerate(pieces):
            piece = LegDraft(sub_id, leg.side, amount, leg.currency)
            if n == 0:
                legs[position] = piece
            else:
                extra.append(piece)
            moved[sub_id] -= amount
    return EntryDraft(entry.txn_no, entry.txn_code, entry.accounting_date, (*legs, *extra), entry.ref)


def _debit_pieces(layout: SplitLayout, start: int, need: int, moved: Mapping[AccountId, int],
                  available: Mapping[AccountId, int]) -> list[tuple[AccountId, int]] | NeedBalances:
    ring = layout.subs[start:] + layout.subs[:start]
    first = ring[0]
    # Fast path without a balance read: a sub's available balance never sits below its floor
    # (database check), so credits this entry already made to it cover the debit on their own.
    if first.floor_minor is None or moved.get(first.id, 0) >= need:
        return [(first.id, need)]
    missing = frozenset(s.id for s in ring if s.floor_minor is not None and s.id not in available)
    if missing:
        return NeedBalances(missing)
    room = [(s.id, _room(s, available, moved)) for s in ring]
    for sub_id, free in room:
        if free is None or free >= need:
            return [(sub_id, need)]
    if sum(free or 0 for _, free in room if free and free > 0) < need:
        raise InsufficientFunds(layout.parent_id, need)
    pieces: list[tuple[AccountId, int]] = []
    left = need
    for sub_id, free in room:
        if left == 0:
            break
        if free is not None and free > 0:
            take = min(free, left)
            pieces.append((sub_id, take))
            left -= take
    return pieces


def _room(sub: SubAccount, available: Mapping[AccountId, int], moved: Mapping[AccountId, int]) -> int | None:
    if sub.floor_minor is None:
        return None
    return available[sub.id] + moved.get(sub.id, 0) - sub.floor_minor


def plan_sweep(sources: Mapping[AccountId, int], targets: Sequence[AccountId],
               target_balances: Mapping[AccountId, int]) -> dict[AccountId, int]:
    """Net change per account that empties every source into the targets, raising the lowest
    targets first so the result is as even as minor units allow. A negative total (overdraft in
    use) lands on the first target, which for a split account is sub 0, the one that carries the
    parent's overdraft limit. Returns account -> delta (normal-side terms); Σ delta = 0."""
    assert targets, "a sweep needs at least one target"
    total = sum(sources.values())
    deltas = {a: -b for a, b in sources.items() if b != 0}
    if total < 0:
        deltas[targets[0]] = deltas.get(targets[0], 0) + total
        return deltas
    current = [target_balances.get(t, 0) for t in targets]
    for target, after, before in zip(targets, _even_fill(total, current), current, strict=True):
        if after != before:
            deltas[target] = deltas.get(target, 0) + after - before
    return deltas


def plan_rebalance(balances: Mapping[AccountId, int]) -> dict[AccountId, int]:
    """Net change per sub that evens out their balances (the remainder goes to the first ones)."""
    ids = list(balances)
    share, rest = divmod(sum(balances.values()), len(ids))
    deltas = {a: share + (1 if i < rest else 0) - balances[a] for i, a in enumerate(ids)}
    return {a: d for a, d in deltas.items() if d != 0}


def _even_fill(total: int, current: list[int]) -> list[int]:
    """Add ``total`` (>= 0) to the lowest entries first (water filling)."""
    order = sorted(range(len(current)), key=current.__getitem__)
    k = len(current)
    while True:
        pool = total + sum(current[i] for i in order[:k])
        level, rest = divmod(pool, k)
        # The largest k whose common level still reaches the k-th lowest balance is the fill.
        if level >= current[order[k - 1]]:
            break
        k -= 1
    result = list(current)
    for rank, i in enumerate(order[:k]):
        result[i] = level + (1 if rank < rest else 0)
    return result


def delta_legs(deltas: Mapping[AccountId, int], normal_side: Side, currency: str) -> list[LegDraft]:
    """Legs that apply ``deltas`` (all accounts share one normal side); balanced when Σ = 0."""
    assert sum(deltas.values()) == 0, "a sweep must net to zero"
    return [
        LegDraft(a, normal_side if d > 0 else normal_side.opposite, abs(d), currency)
        for a, d in sorted(deltas.items()) if d != 0
    ]
