"""``python -m loadtests.run`` end to end on a tiny bounded load (a few seconds, a handful of users): the
request count Locust's summary prints is the one in its CSV and in the JSON headline, and the page to open
first (index.html) carries the verdict, the headline and p50/p95/p99."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadtests.summary import write_summary

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 120  # a 3 s load plus starting and stopping PostgreSQL, Redis, the engine and a simulator


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    reports = tmp_path_factory.mktemp("loadtest-reports")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYENGINE_", "LOADTEST_"))}
    env.update(LOADTEST_CUSTOMERS="4", PYTHONPATH=str(REPO))
    # Its own session, so that a run past the timeout is stopped with everything it started.
    proc = subprocess.Popen([sys.executable, "-m", "loadtests.run", "--users", "6", "--spawn-rate", "6",
                             "--duration", "3s", "--reports", str(reports)], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, None), reports


def _locust_aggregated(out: str) -> int:
    """The request count of the 'Aggregated' row of Locust's own printed summary (its first table)."""
    rows = [line for line in out.splitlines() if re.match(r"^\s+Aggregated\s+\d+", line)]
    assert rows, out[-3000:]
    return int(rows[0].split()[1])


def test_locust_summary_csv_and_headline_count_the_same_requests(
        tiny_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    run, reports = tiny_run
    assert run.returncode == 0, run.stdout[-3000:]
    headline = json.loads(run.stdout.strip().splitlines()[-1])
    with (reports / "run_stats.csv").open() as f:
        aggregated = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    printed = _locust_aggregated(run.stdout)
    assert printed > 0
    assert int(aggregated["Request Count"]) == printed == headline["requests"]
    assert headline["verdict"] == "pass" and headline["money_checks"] == "ok" and headline["failures"] == 0


def test_index_page_carries_verdict_headline_percentiles_and_links(
        tiny_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    run, reports = tiny_run
    headline = json.loads(run.stdout.strip().splitlines()[-1])
    assert headline["report"] == str(reports / "index.html")
    page = (reports / "index.html").read_text()
    assert '<p class="verdict">PASS</p>' in page
    assert json.dumps(headline, indent=2).replace('"', "&quot;") in page
    assert all(f"<th>{p}</th>" in page for p in ("p50", "p95", "p99"))
    assert "<a href='report.html'>" in page and "<a href='flusher.log'>" in page
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["headline"] == headline and summary["endpoints"]["TOTAL"]["requests"] == headline["requests"]
    assert summary["logs"]["flusher.log"]["not_json"] == 0
    assert summary["logs"]["flusher.log"]["recovered_legs"] == 0  # a healthy run loses nothing
    # Locust's report charts p99 too, a point per second.
    report = (reports / "report.html").read_text()
    assert '"percentiles_to_chart": [0.5, 0.95, 0.99]' in report
    assert report.count('"response_time_percentile_0.99"') >= 3


def test_index_page_of_a_failed_run_says_fail_and_lists_the_problems(tmp_path: Path) -> None:
    """The page from a recorded sample (no load): a money check failed."""
    table: dict[str, Any] = {
        "POST POST /v1/payments [wallet]": {"requests": 352, "failures": 0, "rps": 35.2, "p50_ms": 59,
                                            "p95_ms": 150, "p99_ms": 640},
        "TOTAL": {"requests": 352, "failures": 0, "rps": 35.2, "p50_ms": 59, "p95_ms": 150, "p99_ms": 640}}
    money = {"money_checks": "FAILED", "problems": ["wallet: ledger 351 outside [acknowledged 352, attempted 352]"]}
    headline = {"scenario": "loadtest", "verdict": "fail", "requests": 352, "failures": 0, "p99_ms": 640,
                "money_checks": "FAILED"}
    (tmp_path / "flusher.log").write_text(
        '{"level":"warning","msg":"recovery re-enqueued legs","account_id":"acct_1","legs":3}\nplain text\n')
    page = write_summary(tmp_path, headline, table, money).read_text()
    assert '<p class="verdict">FAIL</p>' in page
    assert "ledger 351 outside [acknowledged 352, attempted 352]" in page
    assert "<td class=n>640</td>" in page
    logs = json.loads((tmp_path / "summary.json").read_text())["logs"]["flusher.log"]
    assert logs == {"lines": 2, "warnings": 1, "errors": 0, "not_json": 1, "recovered_legs": 3}
