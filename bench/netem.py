"""A PostgreSQL whose every round trip costs ~1 ms: the condition of a real deployment.

Preferred: kernel ``netem`` — a dedicated network namespace joined to the host by a veth pair, an
embedded PostgreSQL started inside the namespace listening on the veth address, and ``tc qdisc ...
netem delay 0.5ms`` on both ends (1 ms round trip). Needs root, ``ip``/``tc`` and a kernel with
sch_netem. Fallback when netem is missing (some kernels are built without it): a userspace delay
proxy process in front of the bench's own PostgreSQL, 0.5 ms each way: bench/delay_proxy.c compiled
with the machine's C compiler (a real network delays without taking the hosts' CPU; the C proxy takes
a few percent of a core where the Python one, bench/delay_proxy.py, takes a good part of one from the
very modes being compared), or the Python one when there is no compiler or
PAYENGINE_BENCH_DELAY_PROXY=python. The
method used is reported with the figures, and the round trip is measured with ``SELECT 1`` either
way. Everything created here is torn down in ``stop`` (always called, also after failures), and only
what this object created.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import asyncpg

from bench.load import percentile
from engine import embedded
from engine.migrate import migrate

REPO = Path(__file__).resolve().parent.parent
PG_PORT = 5432
PROXY_SOURCE = REPO / "bench" / "delay_proxy.c"
PROXY_BUILD = REPO / "build" / "delay_proxy"  # build/ is git-ignored


def proxy_command() -> tuple[list[str], str]:
    """The delay proxy to run and its label: the C one (compiled here when missing or older than its
    source), else the Python one, with why."""
    if os.environ.get("PAYENGINE_BENCH_DELAY_PROXY", "") == "python":
        return [sys.executable, "-m", "bench.delay_proxy"], "Python (PAYENGINE_BENCH_DELAY_PROXY=python)"
    compiler = shutil.which("cc") or shutil.which("gcc")
    fresh = PROXY_BUILD.exists() and PROXY_BUILD.stat().st_mtime >= PROXY_SOURCE.stat().st_mtime
    if not fresh and compiler:
        PROXY_BUILD.parent.mkdir(exist_ok=True)
        done = subprocess.run([compiler, "-O2", "-o", str(PROXY_BUILD), str(PROXY_SOURCE)],
                              capture_output=True, text=True, check=False, timeout=120)
        fresh = done.returncode == 0
        if not fresh:
            print(f"[db-latency] could not compile the C delay proxy: {done.stderr.strip()[-300:]}",
                  file=sys.stderr, flush=True)
    if fresh:
        return [str(PROXY_BUILD)], "C"
    return [sys.executable, "-m", "bench.delay_proxy"], "Python (no C compiler)" if not compiler else "Python"


class NetemUnavailable(RuntimeError):
    """No way to delay PostgreSQL's traffic here; the scenario prints a labelled skip."""


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise NetemUnavailable(f"`{' '.join(argv)}` failed: {(done.stderr or done.stdout).strip()[-400:]}")


class DelayedPostgres:
    def __init__(self, base_dsn: str, delay_ms_each_way: float = 0.5) -> None:
        self.base_dsn = base_dsn
        self.delay_ms = delay_ms_each_way
        tag = os.getpid() % 100_000
        self.netns = f"pebench{tag}"
        self.host_if, self.ns_if = f"pebh{tag}", f"pebn{tag}"  # interface names must stay under 16 chars
        octet = tag % 250 + 1
        self.host_ip, self.ns_ip = f"10.231.{octet}.1", f"10.231.{octet}.2"
        self.method = ""
        self.dsn = ""
        self._created_netns = False
        self._root: Path | None = None
        self._proxy: subprocess.Popen[str] | None = None
        self._netem_problem = ""
        self._proxy_kind = ""

    def start(self) -> None:
        """Set up the delay; raises NetemUnavailable (after cleaning up) when neither way works."""
        netem_problem = ""
        try:
            self._start_netem()
            self.method = f"tc netem {self.delay_ms} ms each way on a veth into netns {self.netns}"
            return
        except NetemUnavailable as exc:
            netem_problem = str(exc)
            self._stop_netem()
        print(f"[db-latency] kernel netem unavailable ({netem_problem}); using the userspace delay proxy",
              file=sys.stderr, flush=True)
        self._netem_problem = netem_problem
        self.method = "userspace delay proxy"  # started and calibrated by prepare()

    # ------------------------------------------------------------------ kernel netem
    def _start_netem(self) -> None:
        if os.geteuid() != 0:
            raise NetemUnavailable("not root")
        if not (shutil.which("ip") and shutil.which("tc")):
            raise NetemUnavailable("ip/tc not installed")
        _run(["ip", "netns", "add", self.netns])
        self._created_netns = True
        _run(["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if])
        _run(["ip", "link", "set", self.ns_if, "netns", self.netns])
        _run(["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if])
        _run(["ip", "link", "set", self.host_if, "up"])
        _run(["ip", "-n", self.netns, "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if])
        _run(["ip", "-n", self.netns, "link", "set", self.ns_if, "up"])
        _run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        delay = f"{self.delay_ms}ms"
        _run(["tc", "qdisc", "add", "dev", self.host_if, "root", "netem", "delay", delay])
        _run(["ip", "netns", "exec", self.netns, "tc", "qdisc", "add", "dev", self.ns_if, "root", "netem",
              "delay", delay])
        self._root = Path(tempfile.mkdtemp(prefix="pe-bench-netem-", dir="/tmp"))
        pgdata = self._root / "pg"
        # First start initialises the cluster (listening on the namespace's loopback); then it is opened
        # to the veth address, which needs a restart. The postmaster inherits the namespace.
        self._in_netns(f"embedded.start_postgres(Path({str(pgdata)!r}), tcp_port={PG_PORT})")
        with (pgdata / "payengine.conf").open("a") as conf:
            conf.write(f"listen_addresses = '127.0.0.1,{self.ns_ip}'\n")
        with (pgdata / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.host_ip}/32 trust\n")
        self._in_netns(f"embedded.stop_postgres(Path({str(pgdata)!r})); "
                       f"embedded.start_postgres(Path({str(pgdata)!r}), tcp_port={PG_PORT})")
        self.dsn = f"postgresql://postgres@{self.ns_ip}:{PG_PORT}/{embedded.PG_DATABASE}"

    def _in_netns(self, statement: str) -> None:
        code = f"from pathlib import Path; from engine import embedded; {statement}"
        _run(["ip", "netns", "exec", self.netns, sys.executable, "-c", code])

    def _stop_netem(self) -> None:
        if self._root is not None and (self._root / "pg").exists():
            embedded.stop_postgres(self._root / "pg", mode="immediate")
        if self._created_netns:
            # Deleting the namespace deletes the veth pair (both ends) and the qdiscs on them.
            subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, check=False)
            self._created_netns = False
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    # ------------------------------------------------------------------ userspace fallback
    def _start_proxy(self, delay_ms: float) -> None:
        url = urlparse(self.base_dsn)
        query = parse_qs(url.query)
        if "host" in query and query["host"][0].startswith("/"):
            target = ["--target-unix", f"{query['host'][0]}/.s.PGSQL.{query.get('port', ['5432'])[0]}"]
        elif url.hostname:
            target = ["--target", f"{url.hostname}:{url.port or 5432}"]
        else:
            raise NetemUnavailable(f"cannot tell where PostgreSQL listens from {self.base_dsn!r}")
        command, self._proxy_kind = proxy_command()
        self._proxy = subprocess.Popen([*command, "--listen", "127.0.0.1:0", *target, "--delay-ms", str(delay_ms)],
                                       cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert self._proxy.stdout is not None
        line = self._proxy.stdout.readline().strip()
        if not line.startswith("listening "):
            raise NetemUnavailable(f"delay proxy did not start: {line!r}")
        port = int(line.rsplit(":", 1)[1])
        user = url.username or "postgres"
        self.dsn = f"postgresql://{user}@127.0.0.1:{port}/{url.path.lstrip('/') or embedded.PG_DATABASE}"

    def _stop_proxy(self) -> None:
        if self._proxy is not None:
            self._proxy.terminate()
            try:
                self._proxy.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proxy.kill()
                self._proxy.wait()
            self._proxy = None

    async def _calibrate_proxy(self, target_ms: float) -> dict[str, Any]:
        """Find the proxy delay whose measured SELECT 1 round trip is ~target_ms.

        Waking a sleeping process on a VM costs a few hundred microseconds on top of the timer, so
        the nominal delay is not the round trip; bisect the delay on the measured median instead."""
        low, high = 0.0, target_ms / 2
        best: dict[str, Any] | None = None
        for _ in range(6):
            delay = (low + high) / 2
            self._start_proxy(delay)
            measured = await self._measure(150, migrate_first=False)
            measured["proxy_delay_ms_each_way"] = round(delay, 3)
            if best is None or abs(measured["p50_ms"] - target_ms) < abs(best["p50_ms"] - target_ms):
                best = measured
            if abs(measured["p50_ms"] - target_ms) <= 0.08 * target_ms:
                return measured
            self._stop_proxy()
            low, high = (delay, high) if measured["p50_ms"] < target_ms else (low, delay)
        assert best is not None
        self._start_proxy(best["proxy_delay_ms_each_way"])
        return best

    def stop(self) -> None:
        """Tear down whatever this object created; safe to call more than once."""
        self._stop_proxy()
        self._stop_netem()

    async def prepare(self, target_rtt_ms: float = 1.0) -> dict[str, Any]:
        """Migrate the delayed database and measure (calibrating the proxy) the SELECT 1 round trip."""
        if self.method == "userspace delay proxy":  # the proxy path: PostgreSQL is the bench's own, already migrated
            calibrated = await self._calibrate_proxy(target_rtt_ms)
            self.method = (f"userspace delay proxy ({self._proxy_kind}), {calibrated['proxy_delay_ms_each_way']} ms"
                           f" each way calibrated "
                           f"to a {target_rtt_ms} ms round trip (kernel netem unavailable: {self._netem_problem})")
            measured = await self._measure(400, migrate_first=False)
            measured["proxy_delay_ms_each_way"] = calibrated["proxy_delay_ms_each_way"]
            return {"method": self.method, **measured}
        return {"method": self.method, **await self._measure(400, migrate_first=True)}

    async def _measure(self, samples: int, migrate_first: bool) -> dict[str, Any]:
        conn = await asyncpg.connect(self.dsn)
        try:
            if migrate_first:
                await migrate(conn)
            for _ in range(20):  # warm up the connection and the statement cache
                await conn.fetchval("SELECT 1")
            times: list[float] = []
            for _ in range(samples):
                t0 = time.perf_counter()
                await conn.fetchval("SELECT 1")
                times.append((time.perf_counter() - t0) * 1000.0)
        finally:
            await conn.close()
        times.sort()
        return {"p50_ms": round(percentile(times, 50), 3), "p99_ms": round(percentile(times, 99), 3),
                "min_ms": round(times[0], 3)}
