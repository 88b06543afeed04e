"""A batch decides every payment exactly as serial booking in arrival order would.

The same random requests go, one by one, to the serial API (tests/api's app, batching off) for one merchant
and its customers, and as ONE batch in the same order to the batched API for a mirror merchant with the same
customers and balances. Every answer (status, error code, replay header, which payment a duplicate or a
replay names) and every final balance must be the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.client import ApiResult, PayEngineClient
from tests.api.conftest import Api
from tests.api.ledger import snapshot
from tests.batch.conftest import gather_batch, send_payment

PAYERS = 3
UNKNOWN, WRONG_CURRENCY = -1, -2

# (payer: index, UNKNOWN or WRONG_CURRENCY; amount; order-number slot; key slot or None), or ("repeat", j):
# the j-th earlier request sent again, same body and key.
_NEW = st.tuples(st.integers(WRONG_CURRENCY, PAYERS - 1), st.integers(1, 700), st.integers(0, 5),
                 st.one_of(st.none(), st.integers(0, 4)))
_ITEMS = st.lists(st.one_of(_NEW, _NEW, _NEW, st.tuples(st.just("repeat"), st.integers(0, 20))), min_size=1,
                  max_size=14)


class Side:
    """One merchant with its customers: the serial one or its batched mirror."""

    def __init__(self, api: Api, client: PayEngineClient, payers: list[str], usd: str) -> None:
        self.api, self.client, self.payers, self.usd = api, client, payers, usd
        self.unknown = "cus_" + uuid.uuid4().hex[:24]

    @classmethod
    async def open(cls, api: Api, balances: list[int]) -> Side:
        client = await api.merchant()
        payers = [await api.funded_customer(client, b) for b in balances]
        usd = await api.funded_customer(client, 1000, "USD")
        return cls(api, client, payers, usd)

    def send(self, item: tuple[int, int, int, int | None]) -> Callable[[], Awaitable[ApiResult]]:
        payer, amount, order, key = item
        customer = self.unknown if payer == UNKNOWN else self.usd if payer == WRONG_CURRENCY else self.payers[payer]
        body = {"method": "wallet", "amount": amount, "currency": "CNY", "customer_id": customer,
                "merchant_order_no": f"o{order}"}
        return lambda: send_payment(self.client, body, None if key is None else f"k{key}")

    async def balances(self, pool: asyncpg.Pool) -> list[int]:
        rows = await pool.fetch(
            "SELECT a.balance + coalesce((SELECT sum(l.delta) FROM journal_legs l WHERE l.account_id = a.id"
            "                             AND l.status = 'buffered'), 0) AS projected"
            " FROM unnest($1::text[]) WITH ORDINALITY AS o(owner, i)"
            " JOIN accounts a ON a.owner_id = o.owner ORDER BY o.i, a.role, a.currency",
            [*self.payers, self.usd, self.client.merchant_id])
        return [r["projected"] for r in rows]


def _answers(results: list[ApiResult]) -> list[tuple[Any, ...]]:
    """Answers with payment ids replaced by the index of the request that created the payment."""
    created: dict[str, int] = {}
    for n, r in enumerate(results):
        if r.status == 201 and r.headers.get("Idempotent-Replayed") is None:
            created[r.body["id"]] = n
    out: list[tuple[Any, ...]] = []
    for r in results:
        replayed = r.headers.get("Idempotent-Replayed")
        if r.status == 201:
            out.append((201, created.get(r.body["id"]), r.body["amount"], r.body["status"], replayed))
        else:
            error = r.body["error"]
            existing = error.get("existing_id")
            out.append((r.status, error["code"], error.get("param"), None if existing is None else
                        created.get(existing, "elsewhere"), replayed))
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(balances=st.lists(st.integers(0, 1500), min_size=PAYERS, max_size=PAYERS), drawn=_ITEMS)
async def test_a_batch_answers_and_books_as_serial_booking_in_arrival_order(
        api: Api, batched: Api, pool: asyncpg.Pool, balances: list[int], drawn: list[Any]) -> None:
    items: list[tuple[int, int, int, int | None]] = []
    for d in drawn:
        items.append(items[d[1] % len(items)] if d[0] == "repeat" and items else d if d[0] != "repeat"
                     else (0, 1, 0, None))
    serial, mirror = await Side.open(api, balances), await Side.open(batched, balances)
    serial_results = [await serial.send(item)() for item in items]
    batch_results = await gather_batch(batched, pool, [mirror.send(item) for item in items])
    assert _answers(batch_results) == _answers(serial_results), items
    assert await mirror.balances(pool) == await serial.balances(pool), items
    await snapshot(pool, [])  # the trial balance holds (asserted inside)
