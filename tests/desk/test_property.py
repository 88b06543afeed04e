"""Hypothesis drives random sequences of desk actions over HTTP: adjustments proposed, approved and rejected by
random operators (the proposer among them), reversals of what was booked (of mirrors too).

After every step: each answer is the one a model of the rules predicts (201, 200, 403 four eyes, 402 funds, 409
decided / already reversed / a mirror); the model's balances equal PostgreSQL's and every balance equals the sum
of its legs; every entry balances (Σ debits = Σ credits); a proposal has exactly one entry when approved and
none otherwise; and no approved proposal was decided by its proposer. At the end the trial balance holds.

The machine runs on a thread of its own; each step sends its requests on the session's event loop (where the
API under test serves), which runs while the test awaits the thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar

import asyncpg
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from accounts.store import trial_balance
from tests.api.conftest import Api
from tests.desk.desk import DeskHttp, account_of, wallet_of, who

EFFECTS = {"ADJ_CUSTOMER_COMPENSATION": (1, 0), "ADJ_MERCHANT_TOPUP": (0, 1), "ADJ_MERCHANT_ARREAR": (0, -1)}
STEP_TIMEOUT_S = 60


@dataclass
class Booked:
    txn_no: str
    effect: tuple[int, int]  # (wallet, merchant pending)
    is_reversal: bool
    reversal_live: bool = False  # a reversal of it is proposed or booked


@dataclass
class Proposed:
    id: str
    kind: str
    proposer: str
    effect: tuple[int, int]
    target: Booked | None = None  # reversals: the entry it mirrors
    status: str = "proposed"


class DeskMachine(RuleBasedStateMachine):
    api: ClassVar[Api]
    pool: ClassVar[asyncpg.Pool]
    loop: ClassVar[asyncio.AbstractEventLoop]

    def __init__(self) -> None:
        super().__init__()
        self.desk = DeskHttp(self.api)
        client = self.run(self.api.merchant())
        self.wallet = self.run(wallet_of(self.api, client, 0))[1]
        self.pending = self.run(account_of(client, "merchant_pending"))["id"]
        self.balances = [0, 0]
        self.operators = [who() for _ in range(3)]
        self.proposals: list[Proposed] = []
        self.booked: list[Booked] = []

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(STEP_TIMEOUT_S)

    @rule(code=st.sampled_from(sorted(EFFECTS)), amount=st.integers(1, 1_000), proposer=st.integers(0, 2))
    def propose_adjustment(self, code: str, amount: int, proposer: int) -> None:
        role = "customer_wallet" if code == "ADJ_CUSTOMER_COMPENSATION" else "merchant_pending"
        account = self.wallet if role == "customer_wallet" else self.pending
        reply = self.run(self.desk.propose(code, amount, self.operators[proposer], {role: account}))
        assert reply.status == 201, reply.body
        effect = (EFFECTS[code][0] * amount, EFFECTS[code][1] * amount)
        self.proposals.append(Proposed(reply.body["id"], "adjustments", self.operators[proposer], effect))

    @precondition(lambda self: self.booked)
    @rule(data=st.data(), proposer=st.integers(0, 2))
    def propose_reversal(self, data: st.DataObject, proposer: int) -> None:
        target = data.draw(st.sampled_from(self.booked))
        reply = self.run(self.desk.propose_reversal(target.txn_no, self.operators[proposer]))
        if target.is_reversal:
            assert (reply.status, reply.code) == (409, "entry_is_reversal"), reply.body
        elif target.reversal_live:
            assert (reply.status, reply.code) == (409, "entry_already_reversed"), reply.body
        else:
            assert reply.status == 201, reply.body
            target.reversal_live = True
            effect = (-target.effect[0], -target.effect[1])
            self.proposals.append(Proposed(reply.body["id"], "reversals", self.operators[proposer], effect, target))

    @precondition(lambda self: self.proposals)
    @rule(data=st.data(), operator=st.integers(0, 2))
    def approve(self, data: st.DataObject, operator: int) -> None:
        p = data.draw(st.sampled_from(self.proposals))
        reply = self.run(self.desk.decide(p.id, "approve", self.operators[operator], p.kind))
        after = [self.balances[0] + p.effect[0], self.balances[1] + p.effect[1]]
        if p.status != "proposed":
            assert (reply.status, reply.code) == (409, "proposal_not_open"), reply.body
        elif self.operators[operator] == p.proposer:
            assert (reply.status, reply.code) == (403, "four_eyes_required"), reply.body
        elif min(after) < 0:
            assert (reply.status, reply.code) == (402, "insufficient_funds"), reply.body
        else:
            assert reply.status == 200 and reply.body["status"] == "approved", reply.body
            p.status, self.balances = "approved", after
            self.booked.append(Booked(reply.body["txn_no"], p.effect, p.kind == "reversals"))

    @precondition(lambda self: self.proposals)
    @rule(data=st.data(), operator=st.integers(0, 2))
    def reject(self, data: st.DataObject, operator: int) -> None:
        p = data.draw(st.sampled_from(self.proposals))
        reply = self.run(self.desk.decide(p.id, "reject", self.operators[operator], p.kind))
        if p.status != "proposed":
            assert (reply.status, reply.code) == (409, "proposal_not_open"), reply.body
        elif self.operators[operator] == p.proposer:
            assert (reply.status, reply.code) == (403, "four_eyes_required"), reply.body
        else:
            assert reply.status == 200 and reply.body["status"] == "rejected", reply.body
            p.status = "rejected"
            if p.target is not None:
                p.target.reversal_live = False

    @invariant()
    def ledger_agrees_with_the_model(self) -> None:
        self.run(self._check())

    async def _check(self) -> None:
        ids = [p.id for p in self.proposals]
        async with self.pool.acquire() as conn:
            accounts = await conn.fetch(
                "SELECT a.id, a.balance, (SELECT coalesce(sum(l.delta), 0) FROM journal_legs l"
                " WHERE l.account_id = a.id AND l.status = 'applied') AS legs FROM accounts a WHERE a.id = ANY($1)",
                [self.wallet, self.pending])
            entries = await conn.fetch(
                "SELECT e.ref, count(DISTINCT e.txn_no) AS n,"
                " sum(CASE l.side WHEN 'D' THEN l.amount ELSE -l.amount END) AS net FROM journal_entries e"
                " JOIN journal_legs l ON l.txn_no = e.txn_no WHERE e.ref = ANY($1) GROUP BY e.ref", ids)
            self_approved = await conn.fetchval(
                "SELECT count(*) FROM desk_proposals WHERE id = ANY($1) AND decided_by = proposed_by", ids)
        found = {r["id"]: (r["balance"], r["legs"]) for r in accounts}
        assert found[self.wallet] == (self.balances[0], self.balances[0])
        assert found[self.pending] == (self.balances[1], self.balances[1])
        assert all(r["net"] == 0 and r["n"] == 1 for r in entries), [dict(r) for r in entries]
        assert {r["ref"] for r in entries} == {p.id for p in self.proposals if p.status == "approved"}
        assert self_approved == 0

    def teardown(self) -> None:
        async def holds() -> bool:
            async with self.pool.acquire() as conn:
                return (await trial_balance(conn)).holds
        assert self.run(holds())


async def test_desk_actions_keep_the_ledger_balanced_and_four_eyed(api: Api, pool: asyncpg.Pool) -> None:
    DeskMachine.api, DeskMachine.pool, DeskMachine.loop = api, pool, asyncio.get_running_loop()
    runner = DeskMachine.TestCase
    runner.settings = settings(max_examples=12, stateful_step_count=12, deadline=None, derandomize=True,
                               database=None, suppress_health_check=list(HealthCheck))
    await asyncio.to_thread(runner().runTest)
