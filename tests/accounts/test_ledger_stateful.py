"""Hypothesis drives random sequences of accounts and entries, valid and invalid, against the real store.

After every step: the model's balances equal PostgreSQL's, every balance equals the sum of its legs,
the (closed-world) trial balance holds, no account breaks its overdraft rule, and a rejected entry
changed nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from accounts.errors import LedgerError
from accounts.journal import LegDraft, make_entry
from accounts.model import Account, AccountKind, OverdraftMode, Side, signed_delta
from accounts.store import get_accounts, post_entry
from tests.conftest import Servers
from tests.factories import new_txn_no, open_test_account, today

ROLES = ["customer_wallet", "merchant_pending", "channel_receivable", "fee_income", "adjustments"]


class LedgerMachine(RuleBasedStateMachine):
    database_url: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.conn: Any = self.run(asyncpg.connect(self.database_url))
        self.accounts: list[Account] = []
        self.expected: dict[str, int] = {}
        self.entries = 0

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.conn.close())
        self.loop.close()

    @initialize(count=st.integers(2, 4))
    def open_initial(self, count: int) -> None:
        for i in range(count):
            self._open(ROLES[i % len(ROLES)], OverdraftMode.UNLIMITED if i == 0 else OverdraftMode.NEVER, 0, "CNY")

    def _open(self, role: str, mode: OverdraftMode, limit: int, currency: str) -> None:
        acct = self.run(open_test_account(self.conn, role=role, kind=AccountKind.INTERNAL, overdraft=mode,
                                          limit_minor=limit, currency=currency))
        self.accounts.append(acct)
        self.expected[acct.id] = 0

    @rule(role=st.sampled_from(ROLES), mode=st.sampled_from(list(OverdraftMode)), limit=st.integers(0, 500),
          currency=st.sampled_from(["CNY", "CNY", "USD"]))
    def open_account(self, role: str, mode: OverdraftMode, limit: int, currency: str) -> None:
        if len(self.accounts) < 8:
            self._open(role, mode, limit, currency)

    @rule(data=st.data())
    def post_random_entry(self, data: st.DataObject) -> None:
        n_legs = data.draw(st.integers(1, 4))
        legs = []
        for _ in range(n_legs):
            acct = data.draw(st.sampled_from(self.accounts))
            legs.append(LegDraft(acct.id, data.draw(st.sampled_from(list(Side))),
                                 data.draw(st.integers(-5, 800)), data.draw(st.sampled_from([acct.currency, "CNY"]))))
        if data.draw(st.booleans()):  # balance it most of the time, so valid entries happen
            debit = sum(leg.amount_minor for leg in legs if leg.side is Side.DEBIT)
            credit = sum(leg.amount_minor for leg in legs if leg.side is Side.CREDIT)
            other = data.draw(st.sampled_from(self.accounts))
            gap = debit - credit
            if gap:
                side = Side.CREDIT if gap > 0 else Side.DEBIT
                legs.append(LegDraft(other.id, side, abs(gap), legs[0].currency))
        self._try_post(legs)

    def _try_post(self, legs: list[LegDraft]) -> None:
        before = self.run(self.conn.fetchval("SELECT count(*) FROM journal_entries"))
        by_id = {a.id: a for a in self.accounts}
        try:
            entry = make_entry(new_txn_no(), "ADJUST", today(), legs)
            self.run(post_entry(self.conn, entry))
        except LedgerError:
            after = self.run(self.conn.fetchval("SELECT count(*) FROM journal_entries"))
            assert after == before, "a rejected entry left a journal entry behind"
            return
        self.entries += 1
        for leg in legs:
            acct = by_id[leg.account_id]
            self.expected[acct.id] += signed_delta(leg.side, acct.normal_side, leg.amount_minor)

    @invariant()
    def balances_match_model_legs_and_rules(self) -> None:
        if not self.accounts:
            return
        ids = [a.id for a in self.accounts]
        current = self.run(get_accounts(self.conn, ids))
        legs = dict(self.run(self.conn.fetch(
            "SELECT account_id, coalesce(sum(delta), 0) AS s FROM journal_legs"
            " WHERE account_id = ANY($1::text[]) GROUP BY account_id", ids)))
        for acct_id, acct in current.items():
            assert acct.balance_minor == self.expected[acct_id], acct_id
            assert acct.balance_minor == legs.get(acct_id, 0), acct_id
            assert acct.overdraft.allows(acct.available_minor), acct_id
        for currency in {a.currency for a in current.values()}:
            debit = sum(a.balance_minor for a in current.values() if a.currency == currency
                        and a.normal_side is Side.DEBIT)
            credit = sum(a.balance_minor for a in current.values() if a.currency == currency
                         and a.normal_side is Side.CREDIT)
            assert debit == credit, f"trial balance broken in {currency}"


def test_ledger_invariants_hold_under_random_entries(servers: Servers, pool: asyncpg.Pool) -> None:
    LedgerMachine.database_url = servers.database_url
    runner = LedgerMachine.TestCase
    runner.settings = settings(max_examples=40, stateful_step_count=25, deadline=None,
                               suppress_health_check=list(HealthCheck))
    runner().runTest()
