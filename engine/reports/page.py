"""The day report as a page an operator opens: Markdown (plain text that reads as it stands)."""

from __future__ import annotations

from typing import Any

from engine.reports.wire import DayReport, ExceptionSection


def _table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")
    return ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns),
            *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)]


def _section(s: ExceptionSection) -> list[str]:
    shown = f" (the oldest {len(s.items)} shown)" if len(s.items) < s.count else ""
    lines = [f"### {s.title}: {s.count}{shown}", ""]
    if s.items:
        lines += [*_table(s.columns, [[item.get(c) for c in s.columns] for item in s.items]), ""]
    return lines


def render_page(report: DayReport) -> str:
    out = [f"# Day report {report.date.isoformat()}", "", f"Generated {report.generated_at.isoformat()}.", "",
           "## Day-end", ""]
    d = report.day_end
    if d is None:
        out.append("No day-end ran for this date.")
    else:
        out.append(f"Status **{d.status}** (step {d.step}, attempt {d.attempts}), started {d.started_at.isoformat()}"
                   + (f", finished {d.finished_at.isoformat()}" if d.finished_at else "") + ".")
        if d.error:
            out.append(f"Error: {d.error}")
    out += ["", "## Reconciliation", ""]
    if report.reconciliation:
        out += _table(["run", "channel", "status", "items", "open", "counts (outcome: state=n)"], [
            [r.id, r.channel, r.status, r.items, r.open,
             "; ".join(f"{o}: " + ", ".join(f"{s}={n}" for s, n in sorted(st.items()))
                       for o, st in sorted(r.counts.items()))] for r in report.reconciliation])
    else:
        out.append("No reconciliation run for this date.")
    out += ["", "## Settlement", ""]
    if report.settlement.totals:
        out += _table(["currency", "batches", "payments", "gross", "fees", "refunds", "refunded", "refund fees",
                       "adjustments", "adjusted", "net"],
                      [[t.currency, t.batches, t.payments, t.gross, t.fees, t.refunds, t.refunded, t.refund_fees,
                        t.adjustments, t.adjusted, t.net] for t in report.settlement.totals])
    else:
        out.append("No settlement batch for this date.")
    out += ["", "## Open exceptions (now)", ""]
    for section in report.exceptions:
        out += _section(section)
    return "\n".join(out).rstrip() + "\n"
