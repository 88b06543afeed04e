"""`make bench-voucher`: channel payments against a slow channel, asynchronous vs synchronous vouchers.

Starts the `wxsim-slow` simulator (voucher creation 500 ms ± 200 ms) and `payengine serve` with the
gateway (own process by default), then drives N concurrent merchants, each creating channel payments
on a fixed schedule (open loop: the same offered load for both modes, answered or not). Run twice
in one go: the normal engine (create answers at once, the gateway fetches the voucher in the background)
and `PAYENGINE_VOUCHER_SYNC=1` (the create request waits for the channel). Voucher-ready latency is
measured from the database (payment created_at -> voucher updated_at, both stamped by the engine), so
measuring it adds no load. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from engine.client import PayEngineClient, create_merchant
from engine.db import ensure_servers
from engine.settings import Settings

ADMIN_TOKEN = "bench-admin-token"
SIM_PROFILE = "wxsim-slow"
SIM_KEY = "sim-secret-key-0123456789abcdef"  # the built-in profile's key (channels/sim/profile.py)
DRAIN_TIMEOUT_S = 30.0
CLIENT_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_port(port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port}")


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] if sorted_values else 0.0


@contextmanager
def _process(args: list[str], env: dict[str, str], port: int | None) -> Iterator[None]:
    """Run `payengine ARGS` until the block ends; wait for its port (or a moment, for a portless worker)."""
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli.main", *args], env=env)
    try:
        if port is None:
            time.sleep(3.0)
        else:
            _wait_port(port)
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _load(url: str, merchants: int, duration_s: float, pause_s: float, warmup_s: float) -> dict[str, Any]:
    """Each merchant sends a channel payment every `pause_s`. Returns client-side create latencies."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        clients: list[PayEngineClient] = []
        for n in range(merchants):
            created = await create_merchant(url, ADMIN_TOKEN, {"name": f"bench merchant {n}", "currencies": ["CNY"],
                                                               "fee_bps": 60}, session)
            clients.append(PayEngineClient(url, created["id"], created["secret"], session=session, retries_max=0,
                                           timeout_s=CLIENT_TIMEOUT_S))
        run_id = uuid.uuid4().hex[:8]
        latencies: list[float] = []
        measured_orders: list[str] = []  # the creates sent inside the window: their vouchers are the ones counted
        slow: list[tuple[float, int]] = []
        errors = 0
        started = time.perf_counter()
        measure_from = started + warmup_s
        deadline = started + warmup_s + duration_s

        async def create(client: PayEngineClient, n: int, i: int) -> None:
            nonlocal errors
            t0 = time.perf_counter()
            order_no = f"{run_id}-{n}-{i}"
            try:
                r = await client.create_payment({"merchant_order_no": order_no, "amount": 1000 + i,
                                                 "currency": "CNY", "method": "channel", "channel": "wxsim"})
                ok = r.status == 201
            except (TimeoutError, aiohttp.ClientError):  # counted, and its time still counts as latency
                ok = False
            if t0 >= measure_from:
                measured_orders.append(order_no)
                latencies.append(time.perf_counter() - t0)
                slow.append((round(t0 - started, 2), round(latencies[-1] * 1000)))
                errors += not ok

        async def merchant(n: int) -> None:
            # Open loop: a merchant sends on its own schedule whether or not earlier answers came back, so a
            # slow mode faces the same offered load instead of throttling its own clients.
            client = clients[n]
            sends: list[asyncio.Task[None]] = []
            next_at = started + pause_s * n / merchants  # spread the first requests over one pause
            i = 0
            while next_at < deadline:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                sends.append(asyncio.create_task(create(client, n, i)))
                i += 1
                next_at += pause_s
            await asyncio.gather(*sends)

        await asyncio.gather(*(merchant(n) for n in range(merchants)))
    if os.environ.get("BENCH_DEBUG"):  # the slowest creates with their send time, to spot stalls
        print(sorted(slow, key=lambda x: -x[1])[:40], file=sys.stderr)
    latencies.sort()
    return {"latencies": latencies, "errors": errors, "merchant_ids": [c.merchant_id for c in clients],
            "measured_orders": measured_orders}


async def _vouchers(database_url: str, merchant_ids: list[str], measured_orders: list[str]) -> dict[str, Any]:
    """Wait for the gateway to finish, then read voucher-ready latencies from the database.

    Only the payments whose create was sent inside the measured window count (matched by merchant order
    number), so ``ready`` can never exceed ``creates``: a window on the server's clock would take in
    warm-up requests that queued in the client and reached the server late."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            pending = await conn.fetchval(
                "SELECT count(*) FROM payments p JOIN vouchers v ON v.payment_id = p.id"
                " WHERE p.merchant_id = ANY($1::text[]) AND v.status = 'pending'", merchant_ids)
            if pending == 0:
                break
            await asyncio.sleep(0.5)
        rows = await conn.fetch(
            "SELECT p.created_at, v.updated_at, v.status, p.merchant_order_no = ANY($2::text[]) AS measured"
            " FROM payments p JOIN vouchers v ON v.payment_id = p.id"
            " WHERE p.merchant_id = ANY($1::text[])", merchant_ids, measured_orders)
    finally:
        await conn.close()
    ready = [r for r in rows if r["status"] == "ready" and r["measured"]]
    waits = sorted((r["updated_at"] - r["created_at"]).total_seconds() for r in ready)
    span_s = (max(r["updated_at"] for r in ready) - min(r["created_at"] for r in ready)).total_seconds() if ready \
        else 0.0
    return {"ready": len(ready), "not_ready": sum(1 for r in rows if r["status"] != "ready"),
            "p50_ms": _percentile(waits, 0.5) * 1000, "p99_ms": _percentile(waits, 0.99) * 1000,
            "per_s": len(ready) / span_s if span_s else 0.0}


def _phase(name: str, env: dict[str, str], port: int, database_url: str, args: argparse.Namespace,
           gateway_process: bool) -> dict[str, Any]:
    with _process(["serve"], env | {"PAYENGINE_GATEWAY_IN_PROCESS": "0"} if gateway_process else env, port), \
            _process(["gateway"], env, None) if gateway_process else contextlib.nullcontext():
        load = asyncio.run(_load(f"http://127.0.0.1:{port}", args.merchants, args.duration, args.pause,
                                 args.warmup))
        vouchers = asyncio.run(_vouchers(database_url, load["merchant_ids"], load["measured_orders"]))
    lat = load["latencies"]
    result = {"creates": len(lat), "errors": load["errors"], "create_p50_ms": _percentile(lat, 0.5) * 1000,
              "create_p99_ms": _percentile(lat, 0.99) * 1000, "creates_per_s": len(lat) / args.duration, **vouchers}
    print(f"{name}: " + json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}),
          file=sys.stderr, flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--merchants", type=int, default=200, help="concurrent merchants")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per mode")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds per mode not measured")
    parser.add_argument("--pause", type=float, default=2.0,
                        help="seconds between one merchant's creates (open loop; 200 merchants / 2 s = 100 per s)")
    parser.add_argument("--gateway", choices=["process", "inline"], default="process",
                        help="async mode: gateway as its own process (`payengine gateway`) or inside the API process")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="pe-bench-voucher-", dir="/tmp"))
    settings = Settings.from_env().replace(data_dir=data_dir)
    urls = ensure_servers(settings)
    sim_port, port = _free_port(), _free_port()
    sim_env = {**os.environ, "PAYENGINE_LOG_LEVEL": "WARNING"}
    env = {**os.environ, "PAYENGINE_DATABASE_URL": urls.database_url, "PAYENGINE_REDIS_URL": urls.redis_url,
           "PAYENGINE_PORT": str(port), "PAYENGINE_ADMIN_TOKEN": ADMIN_TOKEN, "PAYENGINE_LOG_LEVEL": "WARNING",
           "PAYENGINE_DB_POOL_MAX": "64",
           "PAYENGINE_CHANNELS": f"wxsim=wxsim,http://127.0.0.1:{sim_port},sim-merchant,{SIM_KEY}",
           "PAYENGINE_PUBLIC_URL": f"http://127.0.0.1:{port}", "PAYENGINE_GATEWAY_CHANNEL_CONCURRENCY": "1024",
           "PAYENGINE_JANITOR_QUERY_SCHEDULE_S": "600"}
    try:
        with _process(["channel-sim", "--profile", SIM_PROFILE, "--port", str(sim_port)], sim_env, sim_port):
            asynchronous = _phase("async vouchers", env, port, urls.database_url, args, args.gateway == "process")
            synchronous = _phase("sync vouchers", {**env, "PAYENGINE_VOUCHER_SYNC": "1"}, port, urls.database_url,
                                 args, False)
    finally:
        if not settings.database_url:
            from engine import embedded

            embedded.stop_redis(data_dir / "redis")
            embedded.stop_postgres(data_dir / "pg")
        shutil.rmtree(data_dir, ignore_errors=True)  # ~130 MB of PostgreSQL files per run otherwise
    result = {"scenario": "voucher", "create_p99_ms": round(asynchronous["create_p99_ms"], 2),
              "sync_create_p99_ms": round(synchronous["create_p99_ms"], 2),
              "voucher_ready_p50_ms": round(asynchronous["p50_ms"], 1),
              "voucher_ready_p99_ms": round(asynchronous["p99_ms"], 1),
              "vouchers_per_s": round(asynchronous["per_s"], 1),
              "create_p50_ms": round(asynchronous["create_p50_ms"], 2),
              "sync_create_p50_ms": round(synchronous["create_p50_ms"], 2),
              "creates_per_s": round(asynchronous["creates_per_s"], 1),
              "sync_creates_per_s": round(synchronous["creates_per_s"], 1),
              "vouchers_not_ready": asynchronous["not_ready"], "errors": asynchronous["errors"] + synchronous["errors"],
              "gateway": args.gateway, "load_average_1m": round(os.getloadavg()[0], 2),
              "merchants": args.merchants, "pause_s": args.pause, "duration_s": args.duration,
              "channel_latency": "500±200 ms (wxsim-slow)"}
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
