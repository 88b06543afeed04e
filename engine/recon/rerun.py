"""Re-reconciling a date: the channel's statement as it is now (corrected or supplementary) becomes a new run
that supersedes the live one (POST /admin/reconciliations/reruns). What happens to the old run's items is
engine/recon/supersede.py's plan.

Nothing is written until the new statement is fetched, checked and matched: a date never reconciled, a run
still unfinished, a file the channel cannot serve or a file that is not this channel's statement of this date
is refused and leaves the live run as it was. Then one transaction marks the live run superseded, creates the
new one (generation n + 1, naming its operator), saves its items, applies the plan and writes the audit row;
supplements and the clearing of earlier suspects follow as in a first run (flow.finish). A re-run interrupted
after that transaction is a running live run: a plain POST /admin/reconciliations finishes it (a re-run is
refused until then).
"""

from __future__ import annotations

from datetime import date

from engine.audit.store import record
from engine.errors import Absent, Conflicting, Unprocessable
from engine.gateway.context import Gateway
from engine.keys import RECON_RUN, new_id
from engine.recon import runs_store, store, supersede
from engine.recon.flow import (
    DifferencesResolving,
    ReconError,
    carry_into,
    checked_channel,
    compare,
    finish,
    run_lock,
)
from engine.recon.matching import WrongStatement, check_statement


class NothingToRerun(ReconError, Absent):
    code = "reconciliation_not_found"

    def __init__(self, channel: str, day: date) -> None:
        super().__init__(f"{channel} {day} was never reconciled: run it first (without rerun)")


class RunUnfinished(ReconError, Conflicting):
    code = "reconciliation_unfinished"

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} is unfinished; POST it again without rerun to finish it first")
        self.run_id = run_id


class StatementRefused(ReconError, Unprocessable):
    code = "statement_refused"

    def __init__(self, reason: str) -> None:
        super().__init__(f"the channel's statement cannot supersede the run: {reason}")


async def rerun(gw: Gateway, channel_name: str, day: date, operator: str) -> store.ReconRun:
    """Supersede the live run of ``channel_name``'s ``day`` with a run of the statement the channel serves now.

    Raises UnknownChannel, DayStillOpen, ReconRunning, NothingToRerun, RunUnfinished, DifferencesResolving,
    StatementRefused, or the channel's errors when the file cannot be fetched; in each case nothing is written."""
    adapter = await checked_channel(gw, channel_name, day)
    async with run_lock(gw.pool, channel_name, day):
        async with gw.pool.acquire() as conn:
            live = await runs_store.live_run(conn, channel_name, day)
            waiting = supersede.blocking(await runs_store.old_items(conn, live.id)) if live else []
        if live is None:
            raise NothingToRerun(channel_name, day)
        if live.status == "running":
            raise RunUnfinished(live.id)
        if waiting:
            raise DifferencesResolving(live.id, waiting)
        statement = await adapter.fetch_statement(day)
        try:
            check_statement(statement, channel_name, day)
        except WrongStatement as refused:
            raise StatementRefused(str(refused)) from None
        async with gw.pool.acquire() as conn:
            comparison = await compare(conn, None, channel_name, day, statement)
            async with conn.transaction():
                run = await runs_store.create_rerun(conn, new_id(RECON_RUN), live, operator)
                assert run is not None, "the run lock is held: the live run cannot change under it"
                await store.save_items(conn, run.id, comparison.items)
                closed = await carry_into(conn, run, comparison.items)
                await record(conn, operator, "recon.rerun", "reconciliation", run.id,
                             {"channel": channel_name, "date": day.isoformat(), "supersedes": live.id,
                              "superseded_items": closed, "items": len(comparison.items)})
        return await finish(gw, run, channel_name, comparison)
