"""`make bench-api`: wallet payments over HTTP to one hot merchant vs a no-op handler on the same stack.

Starts `payengine serve` (BENCH_NOOP on) against embedded or configured servers, makes a hot merchant
and funded customers, drives 64 concurrent signed clients for the duration, then the no-op for as
long, checks the money, and prints one JSON line. ``--workers 1,2`` repeats it back to back with 1 and
2 API worker processes on the same servers and adds ``workers2_over_workers1`` (the load generator
shares the machine's cores with the workers and the databases: read the ratio with that in mind).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from accounts.store import trial_balance
from bench import wrk_driver
from engine.client import PayEngineClient, create_merchant
from engine.db import ensure_servers
from engine.settings import Settings

ADMIN_TOKEN = "bench-admin-token"
CUSTOMERS = 256
FUNDING_MINOR = 10**12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] if sorted_values else 0.0


async def _drive(concurrency: int, duration_s: float, call: Any) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration_s

    async def worker(n: int) -> None:
        nonlocal errors
        i = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            ok = await call(n, i)
            latencies.append(time.perf_counter() - started)
            errors += 0 if ok else 1
            i += 1

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    latencies.sort()
    return len(latencies), latencies, errors


PRESIGNED_PER_S = 6000  # payments signed ahead per second of load for wrk: twice the 3000/s target


async def run(url: str, database_url: str, concurrency: int, duration_s: float,
              generator: str = "python") -> dict[str, Any]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        created = await create_merchant(url, ADMIN_TOKEN, {"name": "bench hot", "currencies": ["CNY"],
                                                           "fee_bps": 60, "hot": True}, session)
        client = PayEngineClient(url, created["id"], created["secret"], session=session, retries_max=0)
        customers = []
        for _ in range(CUSTOMERS):
            c = await client.create_customer("b-" + uuid.uuid4().hex)
            await client.topup(c.body["id"], FUNDING_MINOR, "fund")
            customers.append(c.body["id"])
        run_id = uuid.uuid4().hex[:8]
        paid_total = 0

        async def pay(n: int, i: int) -> bool:
            nonlocal paid_total
            r = await client.create_payment({"merchant_order_no": f"{run_id}-{n}-{i}", "amount": 100,
                                             "currency": "CNY", "method": "wallet",
                                             "customer_id": customers[(n * 7919 + i) % CUSTOMERS]})
            if r.status == 201:
                paid_total += 100
            return r.status == 201

        if generator == "wrk":
            with tempfile.TemporaryDirectory(prefix="pe-wrk-req-") as tmp:
                signed = wrk_driver.signed_payments(client, customers, run_id, int(PRESIGNED_PER_S * duration_s),
                                                    100, Path(tmp))
                paid = await asyncio.to_thread(wrk_driver.run, url, signed, concurrency, duration_s)
                noops = await asyncio.to_thread(wrk_driver.run, url, wrk_driver.noop_requests(Path(tmp)),
                                                concurrency, duration_s)
            count, noop_count = paid.by_status.get(201, 0), noops.by_status.get(200, 0)
            paid_total = 100 * count
            errors = paid.requests - count + paid.errors
            p50_ms, p99_ms = paid.p50_ms, paid.p99_ms
            duration_s = paid.duration_s
            noop_duration_s = noops.duration_s
            if paid.exhausted:
                print("[api] wrk sent every pre-signed payment: raise PRESIGNED_PER_S", file=sys.stderr)
        else:
            count, lat, errors = await _drive(concurrency, duration_s, pay)

            async def noop(n: int, i: int) -> bool:
                async with session.post(url + "/bench/noop", data=b'{"n":1}',
                                        headers={"Content-Type": "application/json"}) as resp:
                    await resp.read()
                    return resp.status == 200

            noop_count, _, _ = await _drive(concurrency, duration_s, noop)
            p50_ms, p99_ms = _percentile(lat, 0.50) * 1000, _percentile(lat, 0.99) * 1000
            noop_duration_s = duration_s
    conn = await asyncpg.connect(database_url)
    try:
        spent = await conn.fetchval(
            "SELECT coalesce(sum($2::bigint - a.balance), 0) FROM customers c JOIN accounts a"
            " ON a.id = c.wallet_account_id WHERE c.merchant_id = $1", created["id"], FUNDING_MINOR)
        booked = await conn.fetchval("SELECT coalesce(sum(amount), 0) FROM payments WHERE merchant_id = $1",
                                     created["id"])
        holds = (await trial_balance(conn)).holds
    finally:
        await conn.close()
    # wrk stops with requests in flight: those are booked (or not) but their answers go uncounted, at most
    # one per connection. The Python generator waits for every answer, so there it must match exactly.
    in_flight_max = concurrency * 100 if generator == "wrk" else 0
    money_ok = holds and spent == booked and 0 <= booked - paid_total <= in_flight_max
    payments_per_s, noop_per_s = count / duration_s, noop_count / noop_duration_s
    return {"scenario": "api", "generator": generator, "http_payments_per_s": round(payments_per_s, 1),
            "noop_per_s": round(noop_per_s, 1),
            "payments_over_noop": round(payments_per_s / noop_per_s, 3) if noop_per_s else None,
            "p50_ms": round(p50_ms, 2), "p99_ms": round(p99_ms, 2),
            "errors": errors, "concurrency": concurrency, "duration_s": duration_s,
            "money_checks": "ok" if money_ok else f"FAILED spent={spent} booked={booked} client={paid_total}"}


def _serve(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    """`payengine serve` with ``workers`` API worker processes (SO_REUSEPORT), once it accepts connections."""
    server = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "serve"],
                              env={**env, "PAYENGINE_PORT": str(port), "PAYENGINE_WORKERS": str(workers)})
    for _ in range(120):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.25)
    time.sleep(1.0 if workers > 1 else 0.0)  # the other workers bind a moment after the first
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per load (payments, then no-op)")
    parser.add_argument("--workers", default="1", help="API worker counts to compare, back to back: e.g. 1,2")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto",
                        help="wrk over pre-signed requests (auto: when installed), else the Python client")
    args = parser.parse_args()
    counts = [int(x) for x in args.workers.split(",") if x]
    generator = args.generator if args.generator != "auto" else ("wrk" if wrk_driver.available() else "python")
    data_dir = Path(tempfile.mkdtemp(prefix="pe-bench-api-", dir="/tmp"))
    settings = Settings.from_env().replace(data_dir=data_dir)
    urls = ensure_servers(settings)
    env = {**os.environ, "PAYENGINE_DATABASE_URL": urls.database_url, "PAYENGINE_REDIS_URL": urls.redis_url,
           "PAYENGINE_BENCH_NOOP": "1", "PAYENGINE_ADMIN_TOKEN": ADMIN_TOKEN, "PAYENGINE_LOG_LEVEL": "WARNING",
           "PAYENGINE_DB_POOL_MAX": str(max(64, args.concurrency))}
    runs: dict[int, dict[str, Any]] = {}
    try:
        for workers in counts:
            port = _free_port()
            print(f"[api] {workers} API worker(s): {args.concurrency} clients for {args.duration:g} s",
                  file=sys.stderr, flush=True)
            server = _serve(env, port, workers)
            try:
                runs[workers] = asyncio.run(run(f"http://127.0.0.1:{port}", urls.database_url, args.concurrency,
                                                args.duration, generator))
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=60)
    finally:
        if not settings.database_url:
            from engine import embedded

            embedded.stop_redis(data_dir / "redis")
            embedded.stop_postgres(data_dir / "pg")
        shutil.rmtree(data_dir, ignore_errors=True)  # ~130 MB of PostgreSQL files per run otherwise
    result = dict(runs[counts[0]])
    if len(counts) > 1:
        for workers, one in runs.items():
            result[f"workers{workers}_payments_per_s"] = one["http_payments_per_s"]
            result[f"workers{workers}_p99_ms"] = one["p99_ms"]
            result[f"workers{workers}_noop_per_s"] = one["noop_per_s"]
        first, last = runs[counts[0]], runs[counts[-1]]
        result[f"workers{counts[-1]}_over_workers{counts[0]}"] = round(
            last["http_payments_per_s"] / first["http_payments_per_s"], 2) if first["http_payments_per_s"] else None
        failed = [w for w, one in runs.items() if one["money_checks"] != "ok"]
        result["money_checks"] = "ok" if not failed else f"FAILED with {failed} workers"
    print(json.dumps(result), flush=True)
    return 0 if result["money_checks"] == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
