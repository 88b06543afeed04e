"""The in-process batcher of wallet payments: many requests, one database transaction.

Public interface (stable; the bench's batched mode drives it directly):

    batcher = PaymentBatcher(pool, sink, splits, batch_max=256, linger_us=0, queue_max=4096, bookers=2)
    task = asyncio.create_task(batcher.run())      # the booking tasks (bootstrap runs it as a loop)
    result = await batcher.submit(item)            # item: batch_store.BatchPayment; -> BatchResult
    ...; task.cancel()                             # waiting items then fail with BatcherStopped (503)

``submit`` queues the prepared payment and waits for its own outcome: ``BatchResult.error`` None when it
was booked (``payer``, ``posted`` set), else the exception the serial path would have raised for it
(``stored`` set when that refusal was kept as the answer of the item's Idempotency-Key, in the batch's own
transaction). It raises ``BatchQueueFull`` (503, Retry-After; nothing queued) when ``queue_max`` payments
already wait, and ``BatchCommitUncertain`` when the batch's COMMIT itself failed (it may have booked).

A booking task takes everything that arrived while the previous batch was in flight (natural batching), up
to ``batch_max``, after an optional linger of ``linger_us`` when fewer are waiting; ``bookers`` such tasks
run at once (outcomes follow arrival order within a batch; across batches in flight together, as across
concurrent serial requests, whichever locks a payer's wallet first goes first). Each
batch is one transaction: splits routing and hot-debit reservations per item, one ``payment_batch_book``
statement (outcomes equal to serial booking in arrival order), one statement keeping keyed refusals,
COMMIT; then the hot legs of the whole batch go to the buffer in one enqueue (in the background, after the
answers; a crash first leaves them to the recovery sweep). An unexpected error splits
the batch in halves and books each again, down to single payments, so one poisoned payment fails alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, replace

import asyncpg

from accounts.errors import LedgerError
from accounts.split_store import SplitDirectory
from buffer.errors import HotBufferError
from engine.booking import HotLegSink
from engine.db import release_without_reset
from engine.errors import IdempotencyKeyTaken
from engine.payments import metrics
from engine.payments.batch_store import BatchPayment, BatchResult, StoredRefusal, book_batch, store_refusals
from engine.payments.errors import BatchQueueFull, PaymentError
from engine.web.errors import api_error_for, error_body, unavailable

log = logging.getLogger(__name__)

HAND_OFFS_MAX = 16  # post-commit enqueues in flight per batcher


class BatcherStopped(PaymentError):
    """The process is stopping: the payment was not booked; retry (another process will take it)."""

    code = "temporarily_unavailable"
    retryable = True
    retry_after_s = 1

    def __init__(self) -> None:
        super().__init__("the payment batcher is stopping; retry")


class BatchCommitUncertain(PaymentError):
    """The batch's COMMIT failed without an answer: its payments may have been booked. A retry with the
    same Idempotency-Key gets the stored answer if they were."""

    code = "temporarily_unavailable"
    retryable = True
    retry_after_s = 1

    def __init__(self, cause: str) -> None:
        super().__init__(f"the booking's commit did not answer ({cause}); retry with the same Idempotency-Key")


@dataclass(slots=True)
class _Waiting:
    item: BatchPayment
    future: asyncio.Future[BatchResult]
    queued_at: float


class PaymentBatcher:
    def __init__(self, pool: asyncpg.Pool, sink: HotLegSink | None, splits: SplitDirectory, *, batch_max: int,
                 linger_us: int, queue_max: int, bookers: int = 1) -> None:
        assert batch_max > 0 and queue_max >= batch_max and bookers > 0
        self._pool = pool
        self._sink = sink
        self._splits = splits
        self.batch_max = batch_max
        self._linger_s = linger_us / 1_000_000
        self._queue_max = queue_max
        self._queue: deque[_Waiting] = deque()
        self._wake = asyncio.Event()
        self._bookers = bookers
        self._hand_offs: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        return len(self._queue)

    async def submit(self, item: BatchPayment) -> BatchResult:
        """Queue ``item`` and wait for its outcome (see the module docstring)."""
        if len(self._queue) >= self._queue_max:
            metrics.BATCH_REFUSED_FULL.inc()
            raise BatchQueueFull(len(self._queue))
        future: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(item, future, time.monotonic()))
        self._wake.set()
        # Shielded: a cancelled request leaves its payment in the batch (it may be booked; the stored answer
        # of its key tells a retry), and the booking task never meets a cancelled future.
        return await asyncio.shield(future)

    async def run(self) -> None:
        """The booking tasks: run until cancelled; then every payment still waiting fails BatcherStopped."""
        try:
            await asyncio.gather(*(self._booker() for _ in range(self._bookers)))
        finally:
            waiting = list(self._queue)
            self._queue.clear()
            _fail(waiting, BatcherStopped())

    async def _booker(self) -> None:
        """One booking loop. With several, one books what arrived while the others' batches are in flight
        (PostgreSQL works on one batch while another commits); their lock order keeps them deadlock-free."""
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            if self._linger_s and len(self._queue) < self.batch_max:
                await asyncio.sleep(self._linger_s)
                if not self._queue:
                    continue  # another booker took them
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), self.batch_max))]
            started = time.monotonic()
            for w in batch:
                metrics.BATCH_QUEUE_WAIT.observe(started - w.queued_at)
            metrics.BATCH_SIZE.observe(len(batch))
            try:
                await self._book(batch)
            except asyncio.CancelledError:
                _fail(batch, BatcherStopped())
                raise
            metrics.BATCH_SECONDS.observe(time.monotonic() - started)

    async def _book(self, batch: list[_Waiting]) -> None:
        """Book ``batch``; on an unexpected error, its halves separately. Never raises (but cancellation)."""
        try:
            results = await self._book_once([w.item for w in batch])
        except asyncio.CancelledError:
            raise
        except BatchCommitUncertain as exc:
            metrics.BATCHES.labels("failed").inc()
            _fail(batch, exc)
            return
        except Exception as exc:
            if len(batch) == 1 or unavailable(exc) is not None:
                metrics.BATCHES.labels("failed").inc()
                log.warning("payment batch failed", extra={"size": len(batch), "error": repr(exc)})
                _fail(batch, exc)
                return
            metrics.BATCHES.labels("split").inc()
            log.info("payment batch split after an error", extra={"size": len(batch), "error": repr(exc)})
            half = len(batch) // 2
            await self._book(batch[:half])
            await self._book(batch[half:])
            return
        metrics.BATCHES.labels("booked").inc()
        for w, result in zip(batch, results, strict=True):
            if not w.future.done():
                w.future.set_result(result)

    async def _book_once(self, items: list[BatchPayment]) -> list[BatchResult]:
        results: list[BatchResult | None] = [None] * len(items)
        reservations: list[object] = [None] * len(items)
        committing = False
        async with self._pool.acquire() as conn:
            try:
                async with conn.transaction():
                    todo: list[int] = []
                    routed: list[BatchPayment] = []
                    for n, item in enumerate(items):
                        try:  # as BookingTransaction.post: legs on split parents to their subs, hot debits reserved
                            entry = await self._splits.route(conn, item.entry)
                            if self._sink is not None:
                                reservations[n] = await self._sink.reserve(entry)
                        except (LedgerError, HotBufferError) as exc:
                            results[n] = BatchResult(exc)
                            continue
                        todo.append(n)
                        routed.append(replace(item, entry=entry))
                    if routed:
                        for n, result in zip(todo, await book_batch(conn, routed), strict=True):
                            results[n] = result
                    final = [_with_stored(item, r) for item, r in zip(items, results, strict=True) if r is not None]
                    await store_refusals(conn, [s for _, s in final if s is not None])
                    committing = True
            except BaseException as exc:
                await self._release(reservations)
                # A COMMIT the server refused (a deferred check) rolled back: split and retry like any error. One
                # that got no answer may have committed: no retry, the keys' stored answers tell.
                if committing and isinstance(exc, Exception) and _unanswered(exc):
                    raise BatchCommitUncertain(repr(exc)) from exc
                raise
            release_without_reset(conn)  # the function's settings and locks were transaction-local
        if self._sink is not None:
            await self._hand_off(final, reservations)
        return [r for r, _ in final]

    async def _hand_off(self, final: list[tuple[BatchResult, StoredRefusal | None]],
                        reservations: list[object]) -> None:
        """After the commit: the batch's hot legs to the buffer in one enqueue, refused items' reservations
        released, in the background, so the booker starts the next batch and the clients get their answers
        now (a process that dies first leaves the legs 'buffered' for the recovery sweep, as the serial path
        does). At most HAND_OFFS_MAX run at once."""
        assert self._sink is not None
        sink = self._sink
        booked = [r.posted for r, _ in final if r.error is None and r.posted is not None]
        kept = [res for res, (r, _) in zip(reservations, final, strict=True) if r.error is None and res is not None]
        given_back = [res for res, (r, _) in zip(reservations, final, strict=True) if r.error is not None]

        async def hand_off() -> None:
            await self._release(given_back)
            if booked:
                await sink.enqueue(booked, kept)

        while len(self._hand_offs) >= HAND_OFFS_MAX:
            await asyncio.wait(self._hand_offs, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.get_running_loop().create_task(hand_off())
        self._hand_offs.add(task)
        task.add_done_callback(self._hand_offs.discard)

    async def _release(self, reservations: list[object]) -> None:
        if self._sink is not None:
            for reservation in reservations:
                if reservation is not None:
                    await self._sink.release(reservation)


def _with_stored(item: BatchPayment, result: BatchResult) -> tuple[BatchResult, StoredRefusal | None]:
    """A keyed item's refusal that the serial path would keep as its key's answer (a 4xx)."""
    if result.error is None or item.key is None or item.fingerprint is None \
            or isinstance(result.error, IdempotencyKeyTaken):
        return result, None
    err = api_error_for(result.error)
    if err is None or err.status >= 500:
        return result, None
    refusal = StoredRefusal(item.row.merchant_id, item.key, item.fingerprint, err.status, error_body(err))
    return replace(result, stored=(err.status, refusal.body)), refusal


def _unanswered(exc: Exception) -> bool:
    return unavailable(exc) is not None or isinstance(exc, (OSError, TimeoutError, asyncpg.InterfaceError))


def _fail(batch: list[_Waiting], exc: Exception) -> None:
    for w in batch:
        if not w.future.done():
            w.future.set_exception(exc)
