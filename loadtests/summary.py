"""The page to open first after ``make loadtest``: ``index.html`` in the reports directory (and ``summary.json``).

Locust's ``report.html`` has the charts and the per-endpoint tables but not whether the money held. This page
has the verdict, the run's JSON headline (the last stdout line of ``loadtests.run``), p50/p95/p99 per endpoint,
the money checks, what the processes' logs say (warnings, errors, legs the flusher's recovery put back, which
a healthy run has none of), and links to every other file of the run.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

# Every file a run writes to the reports directory, in the order the page lists them.
RUN_FILES = ("report.html", "run_stats.csv", "run_stats_history.csv", "run_failures.csv", "run_exceptions.csv",
             "expected.json", "engine.log", "flusher.log", "simulator.log")
LOGS = ("engine.log", "flusher.log", "simulator.log")
PAGE, DATA = "index.html", "summary.json"


def verdict(money_checks: str, failures: int, locust_status: int) -> str:
    """'pass' when no request failed, Locust ran to its end (status 0, or 1 for failed requests) and the
    money checks did not fail (skipped counts as not failed: the page says they were skipped)."""
    return "fail" if money_checks == "FAILED" or failures > 0 or locust_status not in (0, 1) else "pass"


def log_findings(reports: Path) -> dict[str, dict[str, int]]:
    """Per log file present: its lines, warnings and errors (JSON lines; other lines counted as such), and for
    the flusher the legs its recovery sweep re-enqueued."""
    found: dict[str, dict[str, int]] = {}
    for name in LOGS:
        path = reports / name
        if not path.exists():
            continue
        counts = {"lines": 0, "warnings": 0, "errors": 0, "not_json": 0}
        if name == "flusher.log":
            counts["recovered_legs"] = 0
        for line in path.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            counts["lines"] += 1
            try:
                event = json.loads(line)
            except ValueError:
                counts["not_json"] += 1
                continue
            if not isinstance(event, dict):
                counts["not_json"] += 1
                continue
            level = str(event.get("level", ""))
            counts["warnings"] += level == "warning"
            counts["errors"] += level in ("error", "critical")
            if event.get("msg") == "recovery re-enqueued legs" and "recovered_legs" in counts:
                counts["recovered_legs"] += int(event.get("legs", 0))
        found[name] = counts
    return found


def write_summary(reports: Path, headline: dict[str, Any], table: dict[str, dict[str, Any]],
                  money: dict[str, Any]) -> Path:
    """Write ``index.html`` and ``summary.json`` into ``reports``; the page's path."""
    logs = log_findings(reports)
    (reports / DATA).write_text(json.dumps({"headline": headline, "endpoints": table, "money": money,
                                            "logs": logs}, indent=2) + "\n")
    page = reports / PAGE
    page.write_text(_page(reports, headline, table, money, logs))
    return page


def _e(value: Any) -> str:
    return html.escape(str(value))


def _page(reports: Path, headline: dict[str, Any], table: dict[str, dict[str, Any]], money: dict[str, Any],
          logs: dict[str, dict[str, int]]) -> str:
    passed = headline.get("verdict") == "pass"
    colour = "#1a7f37" if passed else "#cf222e"
    money_rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in money.items() if k != "problems")
    problems = "".join(f"<li>{_e(p)}</li>" for p in money.get("problems", []))
    columns = ("requests", "failures", "rps", "p50_ms", "p95_ms", "p99_ms")
    endpoint_rows = "".join(
        f"<tr{' class=total' if name == 'TOTAL' else ''}><td>{_e(name)}</td>"
        + "".join(f"<td class=n>{_e(row.get(c, ''))}</td>" for c in columns) + "</tr>"
        for name, row in table.items())
    log_rows = "".join(
        f"<tr><td><a href='{_e(name)}'>{_e(name)}</a></td>"
        + "".join(f"<td class=n>{_e(counts.get(c, ''))}</td>"
                  for c in ("lines", "warnings", "errors", "not_json", "recovered_legs")) + "</tr>"
        for name, counts in logs.items())
    links = "".join(f"<li><a href='{_e(name)}'>{_e(name)}</a></li>" for name in RUN_FILES if (reports / name).exists())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>payengine load test: {_e(headline.get("verdict", "?"))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; }}
.verdict {{ font-size: 2em; font-weight: bold; color: {colour}; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.total td {{ font-weight: bold; }}
pre {{ background: #f6f8fa; padding: 0.8em; overflow-x: auto; }}
</style></head><body>
<h1>payengine load test</h1>
<p class="verdict">{"PASS" if passed else "FAIL"}</p>
<p>money checks: <b>{_e(headline.get("money_checks"))}</b>; requests {_e(headline.get("requests"))},
failures {_e(headline.get("failures"))}, {_e(headline.get("requests_per_s"))} requests/s,
p50 / p95 / p99 {_e(headline.get("p50_ms"))} / {_e(headline.get("p95_ms"))} / {_e(headline.get("p99_ms"))} ms.
Charts over time and every percentile: <a href="report.html">Locust's report</a>.</p>
<h2>Headline</h2>
<pre>{_e(json.dumps(headline, indent=2))}</pre>
<h2>Money checks</h2>
{f"<ul>{problems}</ul>" if problems else ""}<table>{money_rows}</table>
<h2>Endpoints (ms)</h2>
<table><tr><th>endpoint</th><th>requests</th><th>failures</th><th>req/s</th><th>p50</th><th>p95</th><th>p99</th></tr>
{endpoint_rows}</table>
<h2>Logs</h2>
<table><tr><th>file</th><th>lines</th><th>warnings</th><th>errors</th><th>not JSON</th><th>legs recovered</th></tr>
{log_rows}</table>
<h2>Files of this run</h2>
<ul>{links}</ul>
</body></html>
"""
