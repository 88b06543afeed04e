"""The gateway worker: takes due jobs from PostgreSQL and runs them, a bounded number at a time.

Jobs are claimed with `FOR UPDATE SKIP LOCKED`, so any number of workers in any number of processes
share one queue without taking a job twice; a claim carries a lease, and the janitor requeues jobs
whose worker died. Each job's result is written back in its own short transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from engine.gateway.context import Gateway
from engine.gateway.jobs import Done, Failed, JobResult, Retry, backoff_s
from engine.gateway.metrics import JOBS
from engine.gateway.store import ClaimedJob, claim_jobs, finish_job, retry_job

log = logging.getLogger(__name__)

JobHandler = Callable[[Gateway, ClaimedJob, datetime], Awaitable[JobResult]]


class GatewayWorker:
    def __init__(self, gw: Gateway, handlers: Mapping[str, JobHandler], inflight_max: int,
                 claim_kinds: tuple[str, ...] | None = None) -> None:
        self.gw = gw
        self.handlers = dict(handlers)
        # Kinds the loop takes by itself; others run only when asked for (synchronous voucher mode).
        self.claim_kinds = list(claim_kinds if claim_kinds is not None else self.handlers)
        self.inflight_max = inflight_max
        self._running: set[asyncio.Task[JobResult]] = set()
        self._slot_free = asyncio.Event()

    async def run(self) -> None:
        settings = self.gw.settings
        poll_s = settings.gateway_poll_interval_ms / 1000
        kinds = self.claim_kinds
        try:
            while True:
                free = self.inflight_max - len(self._running)
                if free <= 0:
                    self._slot_free.clear()
                    await self._slot_free.wait()
                    continue
                try:
                    async with self.gw.pool.acquire() as conn:
                        jobs = await claim_jobs(conn, kinds, self.gw.worker_id, settings.gateway_job_lease_s,
                                                min(free, settings.gateway_claim_batch_max))
                except Exception:  # a database blip must not end the worker
                    log.warning("claiming jobs failed; will retry", exc_info=True)
                    jobs = []
                for job in jobs:
                    task = asyncio.create_task(self.run_job(job), name=f"gateway-job-{job.id}")
                    self._running.add(task)
                    task.add_done_callback(self._finished)
                if len(jobs) < settings.gateway_claim_batch_max or not jobs:
                    await asyncio.sleep(poll_s)
        finally:
            for task in list(self._running):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._running, return_exceptions=True)

    def _finished(self, task: asyncio.Task[JobResult]) -> None:
        self._running.discard(task)
        self._slot_free.set()

    async def run_job(self, job: ClaimedJob) -> JobResult:
        """Run one claimed job and record its result; an unexpected error becomes a retry with backoff."""
        settings = self.gw.settings
        handler = self.handlers[job.kind]
        try:
            result = await handler(self.gw, job, datetime.now(UTC))
        except Exception as error:
            log.exception("gateway job crashed", extra={"job_id": job.id, "kind": job.kind})
            result = Retry(backoff_s(job.attempts, settings.gateway_backoff_base_ms, settings.gateway_backoff_max_ms),
                           f"crashed: {error!r}"[:500])
        if isinstance(result, Retry) and job.attempts >= settings.gateway_job_attempts_max + 1:
            result = Failed(f"gave up after {job.attempts} attempts: {result.error}")
        # Recording the result must not be cut short by shutdown, or the job would run again for nothing.
        await asyncio.shield(self._record(job, result))
        return result

    async def _record(self, job: ClaimedJob, result: JobResult) -> None:
        if isinstance(result, Done) and result.recorded:
            JOBS.labels(job.kind, "done").inc()
            return
        async with self.gw.pool.acquire() as conn:
            if isinstance(result, Done):
                await finish_job(conn, job.id, "done")
            elif isinstance(result, Retry):
                await retry_job(conn, job.id, result.delay_s, result.error[:500])
            else:
                await finish_job(conn, job.id, "failed", result.error[:500])
                log.error("gateway job failed for good", extra={"job_id": job.id, "kind": job.kind,
                                                                "error": result.error})
        JOBS.labels(job.kind, type(result).__name__.lower()).inc()
