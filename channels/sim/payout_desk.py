"""Where both simulated channels take payouts in: the live fault settings applied to the book.

The wire modules (`wx_payouts`, `bank_payouts`) translate requests and answers; this module
decides, under `SimRuntime.faults`, when a payout settles, whether it is doomed, and whether
the answer to an accepted payout is lost (hang or cut connection). Losing the answer *after*
acceptance is the case the engine must survive: the payout exists, the caller does not know.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, timedelta

from aiohttp import web

from channels.sim.payouts import PayoutAsk, PayoutFailure, SimPayout
from channels.sim.runtime import SimRuntime
from channels.sim.store import Refusal, SimRefused


def accept_payout(runtime: SimRuntime, ask: PayoutAsk) -> SimPayout:
    """Accept (or find again) a payout; raises SimRefused like `PayoutBook.accept`."""
    faults = runtime.faults
    now = runtime.now()
    # Drawn on every call so a seeded simulator tells the same story per call index.
    doomed = PayoutFailure.BANK_REJECTED.value if runtime.rng.random() < faults.payout_fail_rate else None
    settle_at = now + timedelta(milliseconds=faults.payout_settle_ms)
    return runtime.payouts.accept(ask, now, settle_at, doomed, faults.payout_bad_number_suffix)


def find_payout(runtime: SimRuntime, out_payout_no: str) -> SimPayout:
    """The payout as it stands now (settling what is due); SimRefused(NOT_FOUND) when unknown."""
    return runtime.payouts.get(out_payout_no, runtime.now(), runtime.faults.payout_bad_number_suffix)


def look_up_payout(runtime: SimRuntime, out_payout_no: str) -> SimPayout:
    """A merchant's payout query: `find_payout`, except that under `payout_query_not_found_rate` the lookup
    glitches and says it has no such payout (SimRefused(NOT_FOUND)) while the payout stays as it is."""
    rate = runtime.faults.payout_query_not_found_rate
    # Drawn only when the fault is on, so seeded stories of other faults stay as they were.
    if rate and runtime.rng.random() < rate:
        raise SimRefused(Refusal.NOT_FOUND, f"no payout {out_payout_no}")
    return find_payout(runtime, out_payout_no)


def finished_payouts(runtime: SimRuntime, day: date) -> list[SimPayout]:
    """Payouts that succeeded or failed on `day` (UTC), for the statement."""
    return runtime.payouts.finished_on(day, runtime.now(), runtime.faults.payout_bad_number_suffix)


async def answer_payout_create(
    runtime: SimRuntime, request: web.Request, handle: Callable[[], Awaitable[web.Response]]
) -> web.Response:
    """Run the create handler, then lose its answer as the payout faults say.

    A cut connection makes the client see "server disconnected" (aiohttp raises
    ServerDisconnectedError), a hang makes it time out; either way the payout was accepted.
    """
    faults = runtime.faults
    drops, hangs = runtime.rng.random() < faults.payout_drop_rate, runtime.rng.random() < faults.payout_timeout_rate
    response = await handle()
    if drops and request.transport is not None:
        request.transport.close()
    elif hangs:
        await asyncio.sleep(faults.hang_ms / 1000.0)
    return response
