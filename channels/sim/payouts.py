"""The simulator's book of payouts (money sent to bank cards and accounts), wire-neutral.

A payout is accepted at once and settles later, like a real bank transfer: it stays
PROCESSING until its `settle_at`, then becomes SUCCESS or FAIL by the rules below, checked in
order. Settlement is lazy (done when anyone reads the book) and in (settle_at, acceptance)
order, so the channel's funds are spent in a deterministic order whoever asks first.

1. a failure decided at acceptance (the `payout_fail_rate` draw) or forced by the admin;
2. `ACCOUNT_INVALID` when the number ends with the live `payout_bad_number_suffix`;
3. `NAME_MISMATCH` when the admin registered another holder name for that number;
4. `INSUFFICIENT_FUNDS` when the channel's payout funds are below the amount; else SUCCESS
   and the funds go down.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from dataclasses import dataclass
from datetime import date, datetime

from channels.sim.store import Refusal, SimRefused

# Same bound as orders: a runaway load test must not eat the machine's memory.
PAYOUTS_MAX = 2_000_000
DESTINATION_KINDS = frozenset({"bank_card", "bank_account"})


class PayoutState(enum.StrEnum):
    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"


class PayoutFailure(enum.StrEnum):
    """Why a payout failed after acceptance (the simulator's own codes, shared by both wires)."""

    BANK_REJECTED = "BANK_REJECTED"  # the random draw or an admin without a code
    ACCOUNT_INVALID = "ACCOUNT_INVALID"
    NAME_MISMATCH = "NAME_MISMATCH"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"


FAILURE_MESSAGES: dict[str, str] = {
    PayoutFailure.BANK_REJECTED: "the receiving bank rejected the transfer",
    PayoutFailure.ACCOUNT_INVALID: "the account does not exist or is closed",
    PayoutFailure.NAME_MISMATCH: "the holder name does not match the account",
    PayoutFailure.INSUFFICIENT_FUNDS: "the merchant's payout funds are insufficient",
}


@dataclass(frozen=True)
class PayoutAsk:
    """What the merchant asked for; a repeat must ask for exactly the same."""

    out_payout_no: str
    amount_minor: int
    currency: str
    kind: str
    number: str
    holder_name: str
    bank_code: str
    description: str


@dataclass
class SimPayout:
    ask: PayoutAsk
    payout_id: str
    created_at: datetime
    settle_at: datetime
    state: PayoutState = PayoutState.PROCESSING
    # Set at acceptance when the outcome is already decided (random draw); applied at settle.
    doomed_code: str | None = None
    failure_code: str | None = None
    finished_at: datetime | None = None


class PayoutBook:
    """Payouts by out_payout_no. Not thread-safe: one event loop, like `SimStore`."""

    def __init__(self, id_prefix: str, funds_minor: int) -> None:
        self._id_prefix = id_prefix
        self._seq = itertools.count(1)
        self.funds_minor = funds_minor
        self.payouts: dict[str, SimPayout] = {}
        self.holders: dict[str, str] = {}  # account number -> the holder name the bank knows
        self._due: list[tuple[datetime, int, str]] = []  # heap of (settle_at, seq, out_payout_no)

    def accept(
        self, ask: PayoutAsk, now: datetime, settle_at: datetime, doomed_code: str | None, bad_suffix: str
    ) -> SimPayout:
        """A new payout, or the existing one when the same payout is sent again.

        Raises SimRefused(INVALID) for a bad ask and PARAMS_MISMATCH when the out_payout_no
        exists with other content; nothing is accepted then.
        """
        existing = self.payouts.get(ask.out_payout_no)
        if existing is not None:
            if existing.ask != ask:
                raise SimRefused(Refusal.PARAMS_MISMATCH, f"{ask.out_payout_no} exists with other content")
            self.settle_due(now, bad_suffix)
            return existing
        if ask.amount_minor <= 0 or not ask.out_payout_no or not ask.number or not ask.holder_name:
            raise SimRefused(Refusal.INVALID, "amount must be positive; out_payout_no, number, holder name set")
        if ask.kind not in DESTINATION_KINDS:
            raise SimRefused(Refusal.INVALID, f"unknown destination kind {ask.kind!r}")
        if len(self.payouts) >= PAYOUTS_MAX:
            raise SimRefused(Refusal.FULL, "simulator payout book is full")
        seq = next(self._seq)
        payout = SimPayout(ask, f"{self._id_prefix}W{now:%Y%m%d}{seq:010d}", now, settle_at, doomed_code=doomed_code)
        self.payouts[ask.out_payout_no] = payout
        heapq.heappush(self._due, (settle_at, seq, ask.out_payout_no))
        return payout

    def get(self, out_payout_no: str, now: datetime, bad_suffix: str) -> SimPayout:
        self.settle_due(now, bad_suffix)
        payout = self.payouts.get(out_payout_no)
        if payout is None:
            raise SimRefused(Refusal.NOT_FOUND, f"no payout {out_payout_no}")
        return payout

    def settle_due(self, now: datetime, bad_suffix: str) -> None:
        while self._due and self._due[0][0] <= now:
            _, _, out_payout_no = heapq.heappop(self._due)
            payout = self.payouts[out_payout_no]
            if payout.state is PayoutState.PROCESSING:
                self._settle(payout, payout.settle_at, bad_suffix)

    def force(self, out_payout_no: str, state: PayoutState, failure_code: str | None, now: datetime) -> SimPayout:
        """The admin settles a processing payout now, bypassing the rules (funds untouched)."""
        payout = self.payouts.get(out_payout_no)
        if payout is None:
            raise SimRefused(Refusal.NOT_FOUND, f"no payout {out_payout_no}")
        if payout.state is not PayoutState.PROCESSING:
            raise SimRefused(Refusal.ORDER_PAID, f"{out_payout_no} is already {payout.state}")
        if state is PayoutState.FAIL:
            payout.failure_code = failure_code or PayoutFailure.BANK_REJECTED
        payout.state, payout.finished_at = state, now
        return payout

    def _settle(self, payout: SimPayout, at: datetime, bad_suffix: str) -> None:
        ask = payout.ask
        code: str | None = payout.doomed_code
        if code is None and bad_suffix and ask.number.endswith(bad_suffix):
            code = PayoutFailure.ACCOUNT_INVALID
        known_holder = self.holders.get(ask.number)
        if code is None and known_holder is not None and known_holder != ask.holder_name:
            code = PayoutFailure.NAME_MISMATCH
        if code is None and self.funds_minor < ask.amount_minor:
            code = PayoutFailure.INSUFFICIENT_FUNDS
        if code is None:
            self.funds_minor -= ask.amount_minor
            payout.state = PayoutState.SUCCESS
        else:
            payout.state, payout.failure_code = PayoutState.FAIL, code
        payout.finished_at = at

    def finished_on(self, day: date, now: datetime, bad_suffix: str) -> list[SimPayout]:
        self.settle_due(now, bad_suffix)
        return [p for p in self.payouts.values() if p.finished_at is not None and p.finished_at.date() == day]
