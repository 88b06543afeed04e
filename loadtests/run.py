"""``make loadtest``: start the engine (and a channel simulator) unless one answers, run Locust headless
with bounded users and duration, write its CSV and HTML under loadtests/reports/, check the money, and
write the page to open first, reports/index.html: the verdict, the headline, p50/p95/p99, links.

    python -m loadtests.run [--host URL] [--users 200] [--spawn-rate 50] [--duration 60s] [--no-channels]
                            [--reports DIR]

With ``--host`` (or LOADTEST_HOST) pointing at a running engine nothing is started; the money checks
then need PAYENGINE_DATABASE_URL to read the ledger. Exit status 1 when a money check fails or a
request failed (other than the deliberately invalid ones, of which this suite sends none).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg

from accounts.store import trial_balance
from bench.money import MoneyCheckFailed, wait_drained
from engine.payouts.checks import frozen_mismatches
from loadtests.summary import RUN_FILES, verdict, write_summary

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
REPORTS = HERE / "reports"
DRAIN_TIMEOUT_S = 60.0
PAYOUTS_END_TIMEOUT_S = 60.0  # payouts still open when Locust stops are waited for, bounded
OPEN_PAYOUT = ("pending", "sending", "processing")
SIM_MERCHANT, SIM_KEY = "sim-merchant", "sim-secret-key-0123456789abcdef"  # channels/sim/profile.py defaults


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _wait_for(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process for {url} exited with {proc.returncode}")
        if _answers(url):
            return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not become ready in {timeout_s:.0f} s")


class Stack:
    """The engine and one simulator started for this run, in a temp data dir; stopped in ``close``, which
    copies their logs to ``reports``."""

    def __init__(self, with_channels: bool, with_flusher: bool, reports: Path) -> None:
        self.reports = reports
        self.root = Path(tempfile.mkdtemp(prefix="pe-loadtest-", dir="/tmp"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.port = _free_port()
        self.host = f"http://127.0.0.1:{self.port}"
        self.sim_url = ""
        self.database_url = ""
        try:
            self._start_all(with_channels, with_flusher)
        except BaseException:  # a part that failed to start: stop the rest, keep the logs (copied to reports/)
            self.close()
            raise

    def _start_all(self, with_channels: bool, with_flusher: bool) -> None:
        from engine import embedded

        self.database_url = embedded.start_postgres(self.root / "pg").dsn
        self.redis_url = embedded.start_redis(self.root / "redis").url
        env = {**os.environ, "PAYENGINE_DATABASE_URL": self.database_url, "PAYENGINE_REDIS_URL": self.redis_url,
               "PAYENGINE_DATA_DIR": str(self.root), "PAYENGINE_PORT": str(self.port), "PAYENGINE_LOG_LEVEL": "WARNING"}
        if with_channels:
            sim_port = _free_port()
            self.sim_url = f"http://127.0.0.1:{sim_port}"
            code = ("from channels.sim.server import run_simulator; "
                    f"run_simulator('wxsim', '127.0.0.1', {sim_port}, {self.host!r})")
            self._start([sys.executable, "-c", code], env, "simulator.log")
            env["PAYENGINE_CHANNELS"] = f"wxsim=wxsim,{self.sim_url},{SIM_MERCHANT},{SIM_KEY}"
        if with_flusher:
            # The production shape under load (docker-compose.yml): flushers in their own process, none in
            # the API's event loop, where 200 users' requests would delay every flush round (one run of
            # the mixed load saw 86 back-pressure refusals, the buffer's oldest leg past max_lag_ms 5 s).
            env["PAYENGINE_BUFFER_IN_PROCESS_FLUSHERS"] = "false"
        self._start([sys.executable, "-m", "engine.cli.main", "serve"], env, "engine.log")
        _wait_for(f"{self.host}/readyz", self.procs[-1])
        if with_flusher:
            # The flusher as its own process (`payengine flush` shape), the only one.
            self._start([sys.executable, "-m", "buffer.flush_main", "--database-url", self.database_url,
                         "--redis-url", self.redis_url], env, "flusher.log")
        print(f"loadtest: started engine {self.host}" + (f" and simulator {self.sim_url}" if self.sim_url else "")
              + f" (data in {self.root})", flush=True)

    def _start(self, argv: list[str], env: dict[str, str], log_name: str) -> None:
        log = (self.root / log_name).open("wb")
        self.procs.append(subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))

    def close(self) -> None:
        from engine import embedded

        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        embedded.stop_redis(self.root / "redis")
        embedded.stop_postgres(self.root / "pg")
        self.reports.mkdir(parents=True, exist_ok=True)
        for log_name in ("engine.log", "simulator.log", "flusher.log"):
            if (self.root / log_name).exists():
                shutil.copy(self.root / log_name, self.reports / log_name)
        shutil.rmtree(self.root, ignore_errors=True)


def run_locust(host: str, users: int, spawn_rate: int, duration: str, sim_url: str, reports: Path) -> int:
    reports.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LOADTEST_SIM_URL": sim_url, "PYTHONPATH": str(REPO), "LOADTEST_REPORTS": str(reports)}
    argv = [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless", "--host", host,
            "-u", str(users), "-r", str(spawn_rate), "-t", duration, "--stop-timeout", "10",
            "--csv", str(reports / "run"), "--html", str(reports / "report.html"), "--only-summary"]
    print("loadtest: " + " ".join(argv[1:]), flush=True)
    return subprocess.run(argv, cwd=REPO, env=env, check=False).returncode


def _number(text: str) -> int | float | None:
    """A CSV cell as a number (Locust writes 'N/A' for a percentile of no requests)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else round(value, 2)


def summarize(reports: Path) -> dict[str, Any]:
    """Per endpoint: requests, failures, req/s, p50/p95/p99 from Locust's CSV (its final statistics: the
    locustfile rewrites the CSV when Locust quits, so these are the numbers its summary printed)."""
    rows = list(csv.DictReader((reports / "run_stats.csv").open()))
    table: dict[str, Any] = {}
    print(f"\n{'endpoint':<48} {'requests':>9} {'fails':>6} {'req/s':>8} {'p50':>6} {'p95':>6} {'p99':>6}")
    for r in rows:
        name = "TOTAL" if r["Name"] == "Aggregated" else f"{r['Type']} {r['Name']}"
        table[name] = {k: _number(r[c]) for k, c in (("requests", "Request Count"), ("failures", "Failure Count"),
                                                       ("rps", "Requests/s"), ("p50_ms", "50%"), ("p95_ms", "95%"),
                                                       ("p99_ms", "99%"))}
        print(f"{name[:48]:<48} {r['Request Count']:>9} {r['Failure Count']:>6} {float(r['Requests/s']):>8.1f} "
              f"{r['50%']:>6} {r['95%']:>6} {r['99%']:>6}")
    return table


async def money_checks(database_url: str, reports: Path) -> dict[str, Any]:
    """Buffers drained, trial balance holds, balances = Σ legs, and what Locust saw succeed is in the ledger."""
    expected = json.loads((reports / "expected.json").read_text())
    counts = expected["counts"]
    merchant = expected["merchant_id"]
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    problems: list[str] = []
    try:
        async with pool.acquire() as conn:
            pending = [r["id"] for r in await conn.fetch("SELECT id FROM accounts WHERE kind = 'merchant' OR hot")]
        try:
            drain_s = await wait_drained(pool, pending, timeout_s=DRAIN_TIMEOUT_S)
        except MoneyCheckFailed as exc:
            return {"money_checks": "FAILED", "problems": [str(exc)]}
        open_payouts = await _wait_payouts_ended(pool, merchant)
        if open_payouts:
            problems.append(f"{open_payouts} payouts still open {PAYOUTS_END_TIMEOUT_S:.0f} s after the run")
        async with pool.acquire() as conn:
            tb = await trial_balance(conn)
            if not tb.holds_drained:
                problems.append(f"trial balance does not hold: {tb}")
            row = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE method = 'wallet') AS wallet,"
                " count(*) FILTER (WHERE method = 'channel') AS channel,"
                " coalesce(sum(amount) FILTER (WHERE method = 'wallet'), 0) AS wallet_minor,"
                " coalesce(sum(amount - fee), 0) AS net, coalesce(sum(fee), 0) AS fee"
                " FROM payments WHERE merchant_id = $1 AND status = 'succeeded'", merchant)
            refunds = await conn.fetchrow(
                "SELECT count(*) AS n, coalesce(sum(amount), 0) AS minor,"
                " coalesce(sum(amount - fee_refunded), 0) AS net"
                " FROM refunds WHERE merchant_id = $1 AND status = 'succeeded'", merchant)
            merchant_legs = int(await conn.fetchval(
                "SELECT coalesce(sum(l.delta), 0) FROM journal_legs l JOIN accounts a ON a.id = l.account_id"
                " WHERE a.owner_id = $1 AND a.role = 'merchant_pending'", merchant))
            movements = await _movement_problems(conn, merchant, expected["customers"], counts)
            problems += movements.pop("problems")
        ledger = {"wallet": (int(row["wallet"]), int(row["wallet_minor"])),
                  "refunds": (int(refunds["n"]), int(refunds["minor"])),
                  "transfers": movements["transfers"], "payouts": movements["payouts"]}
        for kind, (count, minor) in ledger.items():
            acked = (counts.get(f"{kind}_payments" if kind == "wallet" else kind, 0),
                     counts.get(f"{kind}_payments_minor" if kind == "wallet" else f"{kind}_minor", 0))
            attempted = (counts.get(f"{kind}_attempted", 0) - counts.get(f"{kind}_refused", 0),
                         counts.get(f"{kind}_attempted_minor", 0) - counts.get(f"{kind}_refused_minor", 0))
            # Acknowledged must be booked; unanswered (cut off at stop) may or may not be; nothing more.
            for label, value, low, high in ((kind, count, acked[0], attempted[0]),
                                            (f"{kind} minor", minor, acked[1], attempted[1])):
                if not low <= value <= high:
                    problems.append(f"{label}: ledger {value} outside [acknowledged {low}, attempted {high}]")
        expected_legs = int(row["net"]) - int(refunds["net"])
        if merchant_legs != expected_legs:
            problems.append(f"merchant pending Σ legs {merchant_legs} != Σ payments net - Σ refunds net "
                            f"{expected_legs}")
        if counts.get("channel_payments"):  # polling may give up before a late success: at least as many
            if int(row["channel"]) < counts["channel_payments"]:
                problems.append(f"channel payments {row['channel']} < seen succeeded {counts['channel_payments']}")
    finally:
        await pool.close()
    if problems:
        return {"money_checks": "FAILED", "problems": problems}
    return {"money_checks": "ok", "drain_s": round(drain_s, 2), "wallet_payments": int(row["wallet"]),
            "channel_payments": int(row["channel"]), "refunds": int(refunds["n"]),
            "transfers": ledger["transfers"][0], "payouts": ledger["payouts"][0],
            "payouts_succeeded": movements["payouts_succeeded"], "trial_balance": "holds (drained)",
            "frozen": "= Σ open payouts", "wallets": "= topups - payments + refunds - payouts paid"}


async def _wait_payouts_ended(pool: asyncpg.Pool, merchant: str) -> int:
    """Wait (bounded) until none of the merchant's payouts is open; how many still are."""
    deadline = time.monotonic() + PAYOUTS_END_TIMEOUT_S
    while True:
        still_open = int(await pool.fetchval("SELECT count(*) FROM payouts WHERE merchant_id = $1"
                                             " AND status = ANY($2::text[])", merchant, list(OPEN_PAYOUT)))
        if not still_open or time.monotonic() > deadline:
            return still_open
        await asyncio.sleep(0.5)


async def _movement_problems(conn: asyncpg.Connection, merchant: str, customers: list[str],
                             counts: dict[str, int]) -> dict[str, Any]:
    """Transfers and payouts as the ledger holds them ((count, minor) for the acknowledged/attempted check),
    frozen = Σ open payouts, payouts Locust saw end are in the ledger with that outcome, and the customers'
    wallets (+ frozen) hold exactly their topups - wallet payments + refunds - payouts paid out (transfers
    between them net to zero)."""
    problems: list[str] = []
    transfers = await conn.fetchrow("SELECT count(*) AS n, coalesce(sum(amount), 0) AS minor FROM transfers"
                                    " WHERE merchant_id = $1", merchant)
    payouts = await conn.fetchrow(
        "SELECT count(*) AS n, coalesce(sum(amount), 0) AS minor,"
        " count(*) FILTER (WHERE status = 'succeeded') AS ok, coalesce(sum(amount) FILTER (WHERE status ="
        " 'succeeded'), 0) AS ok_minor, count(*) FILTER (WHERE status = 'failed') AS failed"
        " FROM payouts WHERE merchant_id = $1", merchant)
    settled = int(await conn.fetchval(
        "SELECT count(*) FROM journal_entries e JOIN payouts p ON p.id = e.ref"
        " WHERE p.merchant_id = $1 AND e.txn_code = 'PAYOUT_SETTLE'", merchant))
    if settled != int(payouts["ok"]):
        problems.append(f"payouts succeeded {payouts['ok']} but {settled} PAYOUT_SETTLE entries")
    for outcome, column in (("succeeded", "ok"), ("failed", "failed")):
        if int(payouts[column]) < counts.get(f"payouts_{outcome}", 0):
            problems.append(f"payouts {outcome} {payouts[column]} < seen {outcome} {counts[f'payouts_{outcome}']}")
    mismatched = await frozen_mismatches(conn)
    if mismatched:
        problems.append(f"frozen != Σ open payouts: {mismatched[:5]}")
    held = int(await conn.fetchval(
        "SELECT coalesce(sum(balance), 0) FROM accounts WHERE owner_id = ANY($1::text[])"
        " AND role IN ('customer_wallet', 'customer_frozen')", customers))
    flows = await conn.fetchrow(
        "SELECT (SELECT coalesce(sum(amount), 0) FROM topups WHERE customer_id = ANY($1::text[])) AS topups,"
        " (SELECT coalesce(sum(amount), 0) FROM payments WHERE merchant_id = $2 AND method = 'wallet'"
        "   AND status = 'succeeded') AS paid,"
        " (SELECT coalesce(sum(r.amount), 0) FROM refunds r JOIN payments p ON p.id = r.payment_id"
        "   WHERE p.merchant_id = $2 AND p.method = 'wallet' AND r.status = 'succeeded') AS refunded",
        customers, merchant)
    expected_held = int(flows["topups"]) - int(flows["paid"]) + int(flows["refunded"]) - int(payouts["ok_minor"])
    if held != expected_held:
        problems.append(f"customer wallets + frozen hold {held}, expected {expected_held} (topups "
                        f"{flows['topups']} - wallet payments {flows['paid']} + refunds {flows['refunded']}"
                        f" - payouts paid {payouts['ok_minor']})")
    return {"problems": problems, "transfers": (int(transfers["n"]), int(transfers["minor"])),
            "payouts": (int(payouts["n"]), int(payouts["minor"])), "payouts_succeeded": int(payouts["ok"])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.run", description=__doc__)
    p.add_argument("--host", default=os.environ.get("LOADTEST_HOST", ""), help="a running engine (default: start one)")
    p.add_argument("--users", type=int, default=int(os.environ.get("LOADTEST_USERS", "200")))
    p.add_argument("--spawn-rate", type=int, default=int(os.environ.get("LOADTEST_SPAWN_RATE", "50")))
    p.add_argument("--duration", default=os.environ.get("LOADTEST_DURATION", "60s"))
    p.add_argument("--no-channels", action="store_true", help="leave the channel simulator and ChannelPayer out")
    p.add_argument("--no-flusher", action="store_true", help="start no separate flusher process")
    p.add_argument("--reports", type=Path, default=Path(os.environ.get("LOADTEST_REPORTS") or REPORTS),
                   help="directory for Locust's files, the logs and index.html (default loadtests/reports)")
    args = p.parse_args(argv)
    reports: Path = args.reports.resolve()
    reports.mkdir(parents=True, exist_ok=True)
    for name in (*RUN_FILES, "index.html", "summary.json"):  # what is there is this run's, nothing older
        (reports / name).unlink(missing_ok=True)
    stack: Stack | None = None
    host, sim_url = args.host, os.environ.get("LOADTEST_SIM_URL", "")
    database_url = os.environ.get("PAYENGINE_DATABASE_URL", "")
    try:
        if not host or not _answers(f"{host.rstrip('/')}/healthz"):
            stack = Stack(with_channels=not args.no_channels, with_flusher=not args.no_flusher, reports=reports)
            host, sim_url, database_url = stack.host, stack.sim_url, stack.database_url
        status = run_locust(host, args.users, args.spawn_rate, args.duration, sim_url, reports)
        table = summarize(reports)
        money: dict[str, Any] = {"money_checks": "skipped (set PAYENGINE_DATABASE_URL to check an external engine)"}
        if database_url:
            money = asyncio.run(money_checks(database_url, reports))
        print("\nmoney: " + json.dumps(money))
    finally:
        if stack is not None:
            stack.close()
    total = table.get("TOTAL", {})
    failures = int(total.get("failures") or 0)
    headline = {"scenario": "loadtest", "verdict": verdict(money["money_checks"], failures, status),
                "requests_per_s": float(total.get("rps") or 0), "requests": int(total.get("requests") or 0),
                "failures": failures, "p50_ms": total.get("p50_ms"), "p95_ms": total.get("p95_ms"),
                "p99_ms": total.get("p99_ms"), "money_checks": money["money_checks"],
                "report": str(reports / "index.html")}
    page = write_summary(reports, headline, table, money)
    print(f"loadtest: {headline['verdict'].upper()}; open {page}", flush=True)
    print(json.dumps(headline, separators=(",", ":")))
    return 0 if headline["verdict"] == "pass" else 1


if __name__ == "__main__":
    raise SystemExit(main())
