"""The re-run's plan for the superseded run's items (engine/recon/supersede.py): pure, no fixtures."""

from __future__ import annotations

from engine.recon.matching import Item, OurTxn, TheirLine
from engine.recon.strategy import Action, Outcome
from engine.recon.supersede import Carry, OldItem, blocking, item_key, plan, row_key


def _item(payment_id: str, outcome: Outcome, action: Action) -> Item:
    ours = OurTxn("payment", "T" + payment_id, payment_id, None, "m1", "succeeded", 100, "CNY")
    theirs = None if outcome is Outcome.SHORT else TheirLine("payment", "T" + payment_id, "X", 100, "CNY", "succeeded")
    return Item("payment", "T" + payment_id, None, ours, theirs, outcome, action)


def _old(item_id: int, payment_id: str, outcome: str, state: str, resolution: str | None = None) -> OldItem:
    return OldItem(item_id, row_key("payment", "T" + payment_id, payment_id, None, None), outcome, state, resolution,
                   "a note")


def test_items_pair_by_the_transaction_they_compare_whatever_reference_the_file_used() -> None:
    fresh = _item("p1", Outcome.MATCHED, Action.ACCEPT)
    assert item_key(fresh) == row_key("payment", "another-reference", "p1", None, None) == ("payment", "p1")
    assert row_key("payment", "R9", None, None, None) == ("payment", "ref:R9")


def test_open_items_close_and_carry_and_closed_ones_are_never_reopened() -> None:
    old = [_old(1, "p1", "short", "open"), _old(2, "p2", "amount_mismatch", "open"),
           _old(3, "p3", "short", "resolved", "adjust"), _old(4, "p4", "short", "cleared"),
           _old(5, "p5", "short", "resolved", "explain"), _old(6, "p6", "long", "open"),
           _old(7, "p7", "matched", "ok")]
    new = [_item("p1", Outcome.MATCHED, Action.ACCEPT), _item("p2", Outcome.AMOUNT_MISMATCH, Action.HOLD),
           _item("p3", Outcome.SHORT, Action.SUSPECT), _item("p4", Outcome.SHORT, Action.SUSPECT),
           _item("p5", Outcome.AMOUNT_MISMATCH, Action.HOLD), _item("p7", Outcome.SHORT, Action.SUSPECT)]
    got = plan("rcn_old", old, new)
    assert got.superseded == [1, 2, 6]  # every open item closes, matched now, still differing or gone
    assert got.carries == [
        Carry("payment", "Tp1", 1, None, None, None),  # matched now: the new item is ok, linked back
        Carry("payment", "Tp2", 2, None, None, None),  # still differs: open in the new run only
        Carry("payment", "Tp3", 3, "resolved", "adjust", "closed in run rcn_old: a note"),  # its money moved once
        Carry("payment", "Tp4", 4, "cleared", None, "closed in run rcn_old: a note"),
        Carry("payment", "Tp5", 5, None, None, None),  # another outcome on it: a new difference, open
    ]  # p7 was ok: a difference the correction reveals stands on its own


def test_a_redone_rerun_carries_what_it_closed_before_it_was_interrupted() -> None:
    old = [_old(1, "p1", "short", "resolved", "superseded"), _old(2, "p2", "short", "resolved", "explain")]
    new = [_item("p1", Outcome.SHORT, Action.SUSPECT), _item("p2", Outcome.SHORT, Action.SUSPECT)]
    got = plan("rcn_old", old, new)
    assert got.superseded == []
    assert [(c.carried_from, c.state) for c in got.carries] == [(1, None), (2, "resolved")]


def test_items_waiting_for_a_desk_proposal_block_a_rerun() -> None:
    old = [_old(1, "p1", "short", "open"), _old(2, "p2", "short", "resolving"), _old(3, "p3", "long", "resolving")]
    assert blocking(old) == [2, 3]
    assert blocking(old[:1]) == []
