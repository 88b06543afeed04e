"""Pure sub-account routing and sweep planning: no database."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts.errors import CurrencyMismatch, InsufficientFunds, InvalidSplitCount
from accounts.journal import EntryDraft, LegDraft, make_entry
from accounts.model import AccountId, Side
from accounts.split import (
    NeedBalances,
    SplitLayout,
    SubAccount,
    check_split_count,
    delta_legs,
    plan_rebalance,
    plan_sweep,
    route_entry,
    sub_for_txn,
)
from engine.txn_no import TxnNoGenerator

D, C = Side.DEBIT, Side.CREDIT
P = AccountId("parent")
OTHER = AccountId("other")
DAY = date(2026, 11, 22)
_GEN = TxnNoGenerator(1, 1, 0, 7)


def _txn() -> str:
    return _GEN.next(datetime.now(UTC))


def _layout(n: int, floor: int | None = 0) -> SplitLayout:
    subs = tuple(SubAccount(AccountId(f"parent.s{i:03d}"), i, False, floor) for i in range(n))
    return SplitLayout(P, "CNY", C, subs)


def _entry(txn_no: str, *legs: tuple[str, Side, int]) -> EntryDraft:
    return make_entry(txn_no, "TEST", DAY, [LegDraft(AccountId(a), s, m, "CNY") for a, s, m in legs])


def test_split_count_must_be_between_2_and_256() -> None:
    assert check_split_count(2) == 2 and check_split_count(256) == 256
    for bad in (0, 1, 257, -4, True, 2.0, "4", None):
        with pytest.raises(InvalidSplitCount):
            check_split_count(bad)


def test_transaction_numbers_spread_evenly_and_stick_to_one_sub() -> None:
    gen = TxnNoGenerator(1, 1, 0, 3)
    start = datetime(2026, 11, 22, tzinfo=UTC)
    # One number per millisecond (the counter stays 0) is the case a naive modulo gets wrong.
    numbers = [gen.next(start + timedelta(milliseconds=i)) for i in range(16_000)]
    counts = Counter(sub_for_txn(n, 16) for n in numbers)
    assert len(counts) == 16 and max(counts.values()) < 1.15 * 1000 and min(counts.values()) > 0.85 * 1000
    assert all(sub_for_txn(n, 16) == sub_for_txn(n, 16) for n in numbers[:100])


def test_credit_goes_to_the_txn_chosen_sub_and_other_legs_stay() -> None:
    layout = _layout(4)
    txn = _txn()
    routed = route_entry(_entry(txn, ("other", D, 100), ("parent", C, 100)), {P: layout}, {})
    assert isinstance(routed, EntryDraft)
    assert routed.legs[0].account_id == OTHER
    assert routed.legs[1].account_id == layout.subs[sub_for_txn(txn, 4)].id


def test_credit_then_debit_in_one_entry_needs_no_balance_read() -> None:
    layout = _layout(8)
    routed = route_entry(_entry(_txn(), ("other", D, 50), ("parent", C, 50), ("parent", D, 50), ("other", C, 50)),
                         {P: layout}, {})
    assert isinstance(routed, EntryDraft)
    assert routed.legs[1].account_id == routed.legs[2].account_id


def test_debit_asks_for_balances_then_takes_first_covering_sub_from_the_chosen_one() -> None:
    layout = _layout(4)
    txn = _txn()
    entry = _entry(txn, ("parent", D, 70), ("other", C, 70))
    need = route_entry(entry, {P: layout}, {})
    assert isinstance(need, NeedBalances) and need.account_ids == {s.id for s in layout.subs}
    start = sub_for_txn(txn, 4)
    balances = {s.id: 10 for s in layout.subs}
    balances[layout.subs[(start + 2) % 4].id] = 80
    balances[layout.subs[(start + 3) % 4].id] = 90
    routed = route_entry(entry, {P: layout}, balances)
    assert isinstance(routed, EntryDraft)
    assert routed.legs[0].account_id == layout.subs[(start + 2) % 4].id and len(routed.legs) == 2


def test_debit_no_single_sub_covers_is_split_over_subs_in_one_entry() -> None:
    layout = _layout(4)
    entry = _entry(_txn(), ("parent", D, 100), ("other", C, 100))
    balances = {s.id: 30 for s in layout.subs}
    routed = route_entry(entry, {P: layout}, balances)
    assert isinstance(routed, EntryDraft)
    debits = [leg for leg in routed.legs if leg.side is D]
    assert sum(leg.amount_minor for leg in debits) == 100 and len(debits) == 4
    assert all(leg.amount_minor <= 30 for leg in debits)
    assert routed.legs[1].account_id == OTHER  # original positions kept, pieces appended


def test_debit_beyond_the_family_total_is_refused_naming_the_parent() -> None:
    layout = _layout(4)
    with pytest.raises(InsufficientFunds) as info:
        route_entry(_entry(_txn(), ("parent", D, 121), ("other", C, 121)), {P: layout},
                    {s.id: 30 for s in layout.subs})
    assert info.value.account_id == P


def test_unlimited_subs_take_debits_without_a_balance_read() -> None:
    routed = route_entry(_entry(_txn(), ("parent", D, 10**9), ("other", C, 10**9)), {P: _layout(4, None)}, {})
    assert isinstance(routed, EntryDraft) and len(routed.legs) == 2


def test_leg_in_another_currency_than_the_split_parent_is_refused() -> None:
    layout = SplitLayout(P, "USD", C, _layout(2).subs)
    with pytest.raises(CurrencyMismatch):
        route_entry(_entry(_txn(), ("other", D, 1), ("parent", C, 1)), {P: layout}, {})


def test_sweep_entries_are_never_rerouted() -> None:
    entry = make_entry(_txn(), "SWEEP", DAY, [LegDraft(P, D, 5, "CNY"), LegDraft(OTHER, C, 5, "CNY")])
    assert route_entry(entry, {P: _layout(2)}, {}) is entry


@given(st.lists(st.integers(0, 1000), min_size=2, max_size=20), st.integers(1, 20_000), st.integers(0, 10**6))
def test_routed_debit_is_covered_piecewise_or_refused(balances: list[int], need: int, seed: int) -> None:
    layout = _layout(len(balances))
    available = {s.id: b for s, b in zip(layout.subs, balances, strict=True)}
    txn = f"{seed:032d}"
    entry = EntryDraft(txn, "TEST", DAY, (LegDraft(P, D, need, "CNY"), LegDraft(OTHER, C, need, "CNY")))
    if need > sum(balances):
        with pytest.raises(InsufficientFunds):
            route_entry(entry, {P: layout}, available)
        return
    routed = route_entry(entry, {P: layout}, available)
    assert isinstance(routed, EntryDraft)
    pieces = [leg for leg in routed.legs if leg.side is D]
    assert sum(p.amount_minor for p in pieces) == need
    assert all(p.amount_minor <= available[p.account_id] for p in pieces)
    assert len({p.account_id for p in pieces}) == len(pieces)


@given(st.dictionaries(st.sampled_from(["a", "b", "parent"]), st.integers(-50, 10_000)),
       st.lists(st.integers(0, 10_000), min_size=1, max_size=8))
def test_sweep_plan_empties_sources_and_nets_to_zero(sources: dict[str, int], targets: list[int]) -> None:
    target_ids = [AccountId(f"t{i}") for i in range(len(targets))]
    deltas = plan_sweep({AccountId(k): v for k, v in sources.items()}, target_ids, dict(zip(target_ids, targets,
                                                                                          strict=True)))
    assert sum(deltas.values()) == 0
    assert all(deltas.get(AccountId(k), 0) == -v for k, v in sources.items())
    if sum(sources.values()) >= 0:
        after = [b + deltas.get(t, 0) for t, b in zip(target_ids, targets, strict=True)]
        assert all(a >= b for a, b in zip(after, targets, strict=True))
    legs = delta_legs(deltas, C, "CNY")
    assert sum(leg.amount_minor for leg in legs if leg.side is D) == sum(leg.amount_minor for leg in legs
                                                                         if leg.side is C)


def test_sweep_fills_the_lowest_targets_first() -> None:
    t = [AccountId("t0"), AccountId("t1"), AccountId("t2")]
    deltas = plan_sweep({P: 90}, t, {t[0]: 100, t[1]: 0, t[2]: 10})
    assert deltas == {P: -90, t[1]: 50, t[2]: 40}


def test_rebalance_evens_out_and_nets_to_zero() -> None:
    deltas = plan_rebalance({AccountId("a"): 100, AccountId("b"): 0, AccountId("c"): 1})
    assert sum(deltas.values()) == 0
    assert sorted(b + deltas.get(AccountId(a), 0) for a, b in (("a", 100), ("b", 0), ("c", 1))) == [33, 34, 34]
