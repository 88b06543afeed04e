"""The SQL of batched wallet payments: one statement books a whole batch (migration 093).

``book_batch`` runs ``payment_batch_book`` inside the caller's transaction and returns one ``BatchResult``
per item, in the items' order, each decided exactly as the serial path (store.insert_payment followed by
accounts.store.post_entry) would have decided it had the items come one by one in that order.
``store_refusals`` keeps the refusals of keyed items as their keys' answers in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from accounts.errors import AccountClosed, CurrencyMismatch, InsufficientFunds, UnknownAccount
from accounts.journal import EntryDraft
from accounts.model import AccountId
from accounts.store import Conn, PostedEntry, PostedLeg
from engine.controls.errors import AdmissionReleased
from engine.errors import DuplicateOrder, IdempotencyKeyTaken, NotFound
from engine.payments.errors import PaymentCurrencyMismatch
from engine.payments.store import PAYER, NewPayment, OutboxEvent, Transition


@dataclass(frozen=True, slots=True)
class BatchPayment:
    """One wallet payment as the flow prepared it: its rows, its entry (the payer's wallet as ``PAYER``),
    its response, and what the serial path would claim or check with it."""

    row: NewPayment
    transition: Transition
    event: OutboxEvent
    entry: EntryDraft
    key: str | None  # the Idempotency-Key, claimed with the payment (folded), or None
    fingerprint: bytes | None
    admission_id: str | None
    controls: dict[str, object] | None  # the gate's record (Admission.record())


@dataclass(frozen=True, slots=True)
class BatchResult:
    """``error`` is None when the payment was booked (then ``posted`` and ``payer`` are set). ``stored``:
    the (status, body) kept as the answer of the item's Idempotency-Key with the batch (a keyed 4xx)."""

    error: Exception | None
    payer: str | None = None
    posted: PostedEntry | None = None
    stored: tuple[int, bytes] | None = None


def _error(outcome: str, detail: str | None, item: BatchPayment) -> Exception:
    """The exception the serial path raises for this refusal (so the HTTP answer is the same)."""
    p = item.row
    match outcome:
        case "key_taken":
            return IdempotencyKeyTaken(item.key or "")
        case "duplicate_order":
            return DuplicateOrder("merchant_order_no", p.merchant_order_no, detail or "")
        case "unknown_customer":
            return NotFound("customer", p.customer_id or "", "customer_id")
        case "currency_mismatch":
            return PaymentCurrencyMismatch(detail or "", p.currency, "currency")
        case "admission_released":
            return AdmissionReleased(detail or "")
        case "insufficient_funds":
            return InsufficientFunds(detail or "")
        case "unknown_account":
            return UnknownAccount(detail or "")
        case "account_closed":
            return AccountClosed(detail or "")
        case "account_currency":
            return CurrencyMismatch("account currency", "leg currency", detail or "")
    raise AssertionError(f"payment_batch_book returned an unknown outcome {outcome!r}")


_BOOK = (
    "SELECT * FROM payment_batch_book($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[],"
    " $7::text[], $8::bigint[], $9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::timestamptz[],"
    " $14::text[], $15::text, $16::text, $17::text[], $18::text, $19::bytea[], $20::text[], $21::bytea[],"
    " $22::text[], $23::text[], $24::text[], $25::date[], $26::int[], $27::text[], $28::int[], $29::text[],"
    " $30::text[], $31::bigint[], $32::text[])"
)


async def book_batch(conn: Conn, items: Sequence[BatchPayment]) -> list[BatchResult]:
    """Book every payment of ``items`` that serial execution in this order would book, in one statement.

    All items must share one transition and one outbox event type (wallet payments do). Raises only for
    what the walk cannot decide (e.g. a unique violation from a writer that bypasses the batch's locks):
    then nothing of the batch is written and the caller's transaction must roll back."""
    assert items
    rows = [i.row for i in items]
    l_item: list[int] = []
    l_txn: list[str] = []
    l_leg: list[int] = []
    l_account: list[str | None] = []
    l_side: list[str] = []
    l_amount: list[int] = []
    l_currency: list[str] = []
    for n, item in enumerate(items, 1):
        for leg_no, leg in enumerate(item.entry.legs, 1):
            l_item.append(n)
            l_txn.append(item.entry.txn_no)
            l_leg.append(leg_no)
            l_account.append(None if leg.account_id == PAYER else leg.account_id)
            l_side.append(leg.side.value)
            l_amount.append(leg.amount_minor)
            l_currency.append(leg.currency)
    transition = items[0].transition
    records = await conn.fetch(
        _BOOK,
        [p.id for p in rows], [p.merchant_id for p in rows], [p.merchant_order_no for p in rows],
        [p.amount for p in rows], [p.currency for p in rows], [p.customer_id for p in rows],
        [p.status for p in rows], [p.fee for p in rows], [p.txn_no for p in rows], [p.description for p in rows],
        [msgspec.json.encode(p.metadata).decode() for p in rows], [p.expires_at for p in rows],
        [p.created_at for p in rows], [p.fee_collection for p in rows],
        transition.from_status, transition.event, [i.event.id for i in items], items[0].event.type,
        [i.event.payload for i in items], [i.key for i in items], [i.fingerprint for i in items],
        [i.admission_id for i in items], [None if i.controls is None else json.dumps(i.controls) for i in items],
        [i.entry.txn_code for i in items], [i.entry.accounting_date for i in items],
        l_item, l_txn, l_leg, l_account, l_side, l_amount, l_currency,
    )
    legs: dict[int, list[PostedLeg]] = {}
    outcomes: dict[int, tuple[str, str | None, str | None]] = {}
    for r in records:
        if r["r_outcome"] is not None:
            outcomes[r["r_item"]] = (r["r_outcome"], r["r_detail"], r["r_payer"])
        else:
            legs.setdefault(r["r_item"], []).append(PostedLeg(
                r["r_leg_no"], AccountId(r["r_account"]), r["r_status"], r["r_seq"], r["r_balance"], r["r_delta"]))
    results: list[BatchResult] = []
    for n, item in enumerate(items, 1):
        outcome, detail, payer = outcomes[n]
        if outcome != "ok":
            results.append(BatchResult(_error(outcome, detail, item)))
            continue
        posted = PostedEntry(item.entry.txn_no, tuple(sorted(legs[n], key=lambda leg: leg.leg_no)))
        results.append(BatchResult(None, payer, posted))
    return results


@dataclass(frozen=True, slots=True)
class StoredRefusal:
    merchant_id: str
    key: str
    fingerprint: bytes
    status: int
    body: bytes


async def store_refusals(conn: Conn, refusals: Sequence[StoredRefusal]) -> None:
    """Keep each refusal as its key's answer (as engine.idempotency.store.store_idempotent_refusal does one
    by one). The batch statement took these keys' locks and found them free, so a conflict is a bug of a
    writer that bypasses the locks: it raises and the batch is split."""
    if refusals:
        await conn.execute(
            "INSERT INTO idempotency_keys (merchant_id, key, fingerprint, status_code, response_body, locked_until)"
            " SELECT t.m, t.k, t.f, t.s, t.b, now()"
            " FROM unnest($1::text[], $2::text[], $3::bytea[], $4::int[], $5::bytea[]) AS t(m, k, f, s, b)",
            [r.merchant_id for r in refusals], [r.key for r in refusals], [r.fingerprint for r in refusals],
            [r.status for r in refusals], [r.body for r in refusals])
