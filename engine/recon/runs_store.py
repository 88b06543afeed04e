"""SQL of reconciliation runs as operators read and re-run them: listing, live counts, the live run of a
channel and date, and superseding it (engine/recon/supersede.py says what happens to the items).

Counts are always read from the items (never from what a run wrote at its end), so a run's view, its listing
and its summary agree with its items after any resolution or re-run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from accounts.store import Conn
from engine.recon.store import RUN_COLUMNS, ReconRun, run_of
from engine.recon.supersede import SUPERSEDED, OldItem, Plan, row_key

_NOT_CLOSED = frozenset({"open", "resolving"})  # resolving: a desk proposal about its money awaits approval


@dataclass(frozen=True, slots=True)
class LiveCounts:
    """A run's items counted now: per outcome, per action, per outcome and state, and still open."""

    outcomes: dict[str, int]
    actions: dict[str, int]
    by_state: dict[str, dict[str, int]]
    open: int  # items not closed yet (open, or resolving while a desk proposal awaits approval)


def _counts(rows: Sequence[tuple[str, str, str, int]]) -> LiveCounts:
    outcomes: dict[str, int] = {}
    actions: dict[str, int] = {}
    by_state: dict[str, dict[str, int]] = {}
    for outcome, action, state, n in rows:
        outcomes[outcome] = outcomes.get(outcome, 0) + n
        actions[action] = actions.get(action, 0) + n
        states = by_state.setdefault(outcome, {})
        states[state] = states.get(state, 0) + n
    return LiveCounts(outcomes, actions, by_state, sum(n for _, _, state, n in rows if state in _NOT_CLOSED))


async def live_counts(conn: Conn, run_ids: Sequence[str]) -> dict[str, LiveCounts]:
    """Counts of each run's items as they are now (runs without items get empty counts)."""
    rows = await conn.fetch(
        "SELECT run_id, outcome, action, state, count(*) AS n FROM recon_items WHERE run_id = ANY($1::text[])"
        " GROUP BY 1, 2, 3, 4", list(run_ids))
    grouped: dict[str, list[tuple[str, str, str, int]]] = {run_id: [] for run_id in run_ids}
    for r in rows:
        grouped[r["run_id"]].append((r["outcome"], r["action"], r["state"], int(r["n"])))
    return {run_id: _counts(found) for run_id, found in grouped.items()}


async def list_runs(conn: Conn, channel: str | None, day: date | None, status: str | None,
                    superseded: bool | None, limit: int) -> list[ReconRun]:
    """Runs newest statement date first (then channel, newest generation first), filtered."""
    rows = await conn.fetch(
        f"SELECT {RUN_COLUMNS} FROM recon_runs WHERE ($1::text IS NULL OR channel = $1)"
        " AND ($2::date IS NULL OR statement_date = $2) AND ($3::text IS NULL OR status = $3)"
        " AND ($4::boolean IS NULL OR (superseded_by IS NOT NULL) = $4)"
        " ORDER BY statement_date DESC, channel, generation DESC LIMIT $5",
        channel, day, status, superseded, limit)
    return [run_of(r) for r in rows]


async def live_run(conn: Conn, channel: str, day: date) -> ReconRun | None:
    r = await conn.fetchrow(f"SELECT {RUN_COLUMNS} FROM recon_runs WHERE channel = $1 AND statement_date = $2"
                            " AND superseded_by IS NULL", channel, day)
    return run_of(r) if r else None


async def create_rerun(conn: Conn, run_id: str, old: ReconRun, operator: str) -> ReconRun | None:
    """Mark ``old`` superseded by a new running run ``run_id`` and create it; None when ``old`` is no longer the
    live run (another re-run won). Caller holds the transaction."""
    moved = await conn.fetchval(
        "UPDATE recon_runs SET superseded_by = $2, superseded_at = now() WHERE id = $1 AND superseded_by IS NULL"
        " AND status <> 'running' RETURNING id", old.id, run_id)
    if moved is None:
        return None
    r = await conn.fetchrow(
        "INSERT INTO recon_runs (id, channel, statement_date, status, generation, supersedes, operator)"
        f" VALUES ($1, $2, $3, 'running', $4, $5, $6) RETURNING {RUN_COLUMNS}",
        run_id, old.channel, old.statement_date, old.generation + 1, old.id, operator)
    return run_of(r)


async def old_items(conn: Conn, run_id: str) -> list[OldItem]:
    """The run's items, locked until the caller's transaction ends: a desk resolution (a compare-and-set from
    'open') waits for the re-run to commit and then finds them closed, so it never acts on a superseded item."""
    rows = await conn.fetch(
        "SELECT id, kind, reference, payment_id, refund_id, payout_id, outcome, state, resolution, note"
        " FROM recon_items WHERE run_id = $1 ORDER BY id FOR UPDATE", run_id)
    return [OldItem(r["id"], row_key(r["kind"], r["reference"], r["payment_id"], r["refund_id"], r["payout_id"]),
                    r["outcome"], r["state"], r["resolution"], r["note"]) for r in rows]


async def apply_plan(conn: Conn, new_run_id: str, operator: str | None, plan: Plan) -> int:
    """Close the old run's open items as superseded (by ``operator``) and link the new items to what they carry;
    returns how many old items were closed. Caller holds the transaction that saved the new items."""
    await conn.execute(
        "UPDATE recon_items i SET carried_from = c.carried_from, state = coalesce(c.state, i.state),"
        " resolution = coalesce(c.resolution, i.resolution), note = coalesce(c.note, i.note), updated_at = now()"
        " FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[])"
        "   AS c (kind, reference, carried_from, state, resolution, note)"
        " WHERE i.run_id = $1 AND i.kind = c.kind AND i.reference = c.reference",
        new_run_id, [c.kind for c in plan.carries], [c.reference for c in plan.carries],
        [c.carried_from for c in plan.carries], [c.state for c in plan.carries],
        [c.resolution for c in plan.carries], [c.note for c in plan.carries])
    status = await conn.execute(
        "UPDATE recon_items SET state = 'resolved', resolution = $3, resolved_by = $4, resolved_at = now(),"
        " note = coalesce(note || '; ', '') || 'superseded by run ' || $2, updated_at = now()"
        " WHERE id = ANY($1::bigint[]) AND state = 'open'", plan.superseded, new_run_id, SUPERSEDED, operator)
    return int(status.split()[-1])
