"""Hypothesis drives random credits, debits, splits, resizes, sweeps (tidy/rebalance) and postings
through a stale routing view against real PostgreSQL; after every step the family invariants hold:
parent shown = Σ subs = Σ applied legs = the model, no sub below its floor, retired subs empty once
closed, the family's books balance against its sources, and a refused operation changed nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from accounts.errors import AccountClosed, InsufficientFunds, InvalidSplitCount
from accounts.split_store import split_view
from engine.booking import Booker
from engine.ledger_admin.accounts import tidy_account
from tests.conftest import Servers
from tests.factories import new_txn_no
from tests.split.helpers import Family, check_family, credit, debit, open_family, split


class SplitMachine(RuleBasedStateMachine):
    database_url: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.pool: Any = self.run(asyncpg.create_pool(self.database_url, min_size=1, max_size=4,
                                                          loop=self.loop))
        self.booker = Booker(self.pool)
        # A second process's view of the splits, refreshed only when a rule says so.
        self.stale = Booker(self.pool)
        self.stale.splits.ttl_s = 10**9
        self.total = 0
        self.sub_count = 0
        self.fam: Family | None = None

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.pool.close())
        self.loop.close()

    def _entries(self) -> int:
        assert self.fam is not None
        return int(self.run(self.pool.fetchval(
            "SELECT count(*) FROM journal_legs l JOIN accounts a ON a.id = l.account_id"
            " WHERE a.id = $1 OR a.parent_id = $1", self.fam.parent.id)))

    @initialize(seed_amount=st.integers(0, 5_000))
    def open(self, seed_amount: int) -> None:
        self.fam = self.run(self._open())
        if seed_amount:
            self.run(credit(self.booker, self.fam, seed_amount))
            self.total += seed_amount

    async def _open(self) -> Family:
        async with self.pool.acquire() as conn:
            return await open_family(conn)

    @rule(amount=st.integers(1, 3_000), stale=st.booleans())
    def credit(self, amount: int, stale: bool) -> None:
        assert self.fam is not None
        before = self._entries()
        try:
            self.run(credit(self.stale if stale else self.booker, self.fam, amount))
        except AccountClosed:  # a stale view picked a sub closed since: refused whole
            assert stale and self._entries() == before
            return
        self.total += amount

    @rule(amount=st.integers(1, 4_000))
    def debit(self, amount: int) -> None:
        assert self.fam is not None
        before = self._entries()
        try:
            self.run(debit(self.booker, self.fam, amount))
        except InsufficientFunds:
            # Refused only when the family cannot cover it; money stuck on the parent row or on
            # retired subs (stale routing) is not spendable until tidy moves it.
            view = self.run(split_view(self.pool, self.fam.parent.id))
            spendable = sum(s.balance_minor for s in view.subs if s.active) if view.sub_count else view.balance_minor
            assert amount > spendable and self._entries() == before
            return
        self.total -= amount

    @rule(into=st.one_of(st.integers(2, 12), st.sampled_from([0, 1, 257, 1000])))
    def resize(self, into: int) -> None:
        assert self.fam is not None
        before = self._entries()
        try:
            self.run(split(self.booker, self.fam.parent.id, into))
        except InvalidSplitCount:
            assert not 2 <= into <= 256 and self._entries() == before
            return
        self.sub_count = into

    @rule(low=st.sampled_from([0, 0, 100, 10**6]))
    def tidy(self, low: int) -> None:
        assert self.fam is not None
        if self.sub_count:
            self.run(tidy_account(self.booker, new_txn_no, self.fam.parent.id, grace_s=0, rebalance_low_minor=low))

    @rule()
    def refresh_stale_view(self) -> None:
        self.stale.splits.invalidate()

    @invariant()
    def family_holds(self) -> None:
        if self.fam is None:
            return
        parent_id = self.fam.parent.id
        assert self.run(check_family(self.pool, parent_id)) == self.total
        view = self.run(split_view(self.pool, parent_id))
        assert view.sub_count == self.sub_count
        assert sum(1 for s in view.subs if s.active) == self.sub_count
        assert all(s.balance_minor == 0 for s in view.subs if s.status == "closed")
        source = self.run(self.pool.fetchval("SELECT balance FROM accounts WHERE id = $1", self.fam.source.id))
        assert source == self.total  # the family's money all came from (and went back to) its source


def test_split_invariants_hold_under_random_operations(servers: Servers, pool: asyncpg.Pool) -> None:
    SplitMachine.database_url = servers.database_url
    runner = SplitMachine.TestCase
    runner.settings = settings(max_examples=25, stateful_step_count=20, deadline=None,
                               suppress_health_check=list(HealthCheck))
    runner().runTest()
