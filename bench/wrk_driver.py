"""Drive the API with wrk (C, epoll) over pre-signed requests, so the load generator is not what is measured.

The Python generator tops out near 9-12k no-op requests/s on this machine while aiohttp serves ~26k per
process: it measured itself. wrk sends requests prepared here: every payment signed in advance with its own
order number and Idempotency-Key (the signature window is minutes, a run is seconds), loaded by a Lua script
that walks them in order, one connection per client, and counts the answers by status. The requests file
holds more payments than the run can send; one left unsent is simply not paid.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from engine.client import PayEngineClient

# A request per line: method, path, headers (JSON object), body, tab-separated; wrk formats each once, in
# init, so the hot loop only hands out prepared strings. done() prints one JSON line the caller parses.
_SCRIPT = r"""
local requests = {}
counts = {}  -- globals: done() reads them from every thread
exhausted = 0
local n = 0
local next_index = 1

function setup(thread)
  thread:set("offset", #threads)  -- runs before the thread's init: its share of the requests
  table.insert(threads, thread)
end

function init(args)
  local file = args[1]
  local step = tonumber(args[2])
  local i = 0
  for line in io.lines(file) do
    if i % step == offset then
      local method, path, headers, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      local h = {}
      for k, v in headers:gmatch('"([^"]+)":"([^"]*)"') do h[k] = v end
      n = n + 1
      requests[n] = wrk.format(method, path, h, body)
    end
    i = i + 1
  end
end

function request()
  local r = requests[next_index]
  if r == nil then
    exhausted = 1
    r = requests[n]
  end
  next_index = next_index + 1
  return r
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests_done)
  local totals = {}
  local ran_out = 0
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for status, k in pairs(c) do totals[tostring(status)] = (totals[tostring(status)] or 0) + k end
    if thread:get("exhausted") == 1 then ran_out = 1 end
  end
  local parts = {}
  for status, k in pairs(totals) do table.insert(parts, string.format('"%s":%d', status, k)) end
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d,"exhausted":%d,"status":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status
      + summary.errors.timeout, ran_out, table.concat(parts, ",")))
end
"""
_SETUP = 'threads = {}\n'


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    exhausted: bool
    by_status: dict[int, int]

    def per_s(self, status: int) -> float:
        return self.by_status.get(status, 0) / self.duration_s if self.duration_s else 0.0


def available() -> bool:
    return shutil.which("wrk") is not None


def _line(method: str, path: str, headers: dict[str, str], body: bytes) -> str:
    assert b"\t" not in body and b"\n" not in body, "one request per line"
    return f"{method}\t{path}\t{json.dumps(headers, separators=(',', ':'))}\t{body.decode()}\n"


def signed_payments(client: PayEngineClient, customers: list[str], run_id: str, count: int,
                    amount_minor: int, directory: Path) -> Path:
    """``count`` wallet payments, each signed now with its own order number and Idempotency-Key."""
    path = directory / "payments.tsv"
    with path.open("w") as out:
        for i in range(count):
            body = msgspec.json.encode({"merchant_order_no": f"{run_id}-{i}", "amount": amount_minor,
                                        "currency": "CNY", "method": "wallet",
                                        "customer_id": customers[(i * 7919) % len(customers)]})
            headers = {**client.signed_headers("POST", "/v1/payments", body), "Content-Type": "application/json",
                       "Idempotency-Key": f"{run_id}-{i}"}
            out.write(_line("POST", "/v1/payments", headers, body))
    return path


def noop_requests(directory: Path) -> Path:
    path = directory / "noop.tsv"
    path.write_text(_line("POST", "/bench/noop", {"Content-Type": "application/json"}, b'{"n":1}'))
    return path


def run(url: str, requests_file: Path, connections: int, duration_s: float, threads: int = 2) -> WrkResult:
    """wrk with ``connections`` clients for ``duration_s``; each wrk thread takes every threads-th request."""
    with tempfile.TemporaryDirectory(prefix="pe-wrk-") as tmp:
        script = Path(tmp) / "driver.lua"
        script.write_text(_SETUP + _SCRIPT)
        done = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration_s:g}s", "--latency",
             "-s", str(script), url, "--", str(requests_file), str(threads)],
            capture_output=True, text=True, timeout=duration_s + 120, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result (exit {done.returncode}): {done.stderr or done.stdout}")
    raw: dict[str, Any] = json.loads(line.removeprefix("WRK_RESULT "))
    return WrkResult(raw["requests"], raw["duration_us"] / 1e6, raw["p50_us"] / 1000, raw["p99_us"] / 1000,
                     raw["errors"], bool(raw["exhausted"]), {int(k): v for k, v in raw["status"].items()})
