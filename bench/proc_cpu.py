"""CPU time of local server processes, read from /proc: what one payment costs PostgreSQL and Redis.

PostgreSQL runs one process per connection plus its helpers (WAL writer, checkpointer, ...), all
children of the postmaster. Their CPU over a window is the postmaster's own utime+stime plus its
``cutime``/``cstime`` (children it has reaped: backends that exited during the window) plus the live
children's utime+stime, so a connection that closes mid-window is still counted. Linux only; on any
other system, or for a server on another host, the sampler reports itself unavailable (None).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (state) on; the command name may hold spaces and parentheses."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()


def _ticks(fields: list[str], with_children: bool) -> int:
    # Fields from 'state': utime is index 11, stime 12, cutime 13, cstime 14 (stat(5) fields 14-17).
    own = int(fields[11]) + int(fields[12])
    return own + (int(fields[13]) + int(fields[14]) if with_children else 0)


def parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def children_of(parent: int) -> list[int]:
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


@dataclass(frozen=True, slots=True)
class ProcessTree:
    """A server process and its children (PostgreSQL), or one process (Redis)."""

    root: int
    with_children: bool

    def cpu_s(self) -> float:
        """CPU seconds used so far by the root, its live children and the children it reaped."""
        fields = _stat_fields(self.root)
        if fields is None:
            return 0.0
        total = _ticks(fields, self.with_children)
        if self.with_children:
            for child in children_of(self.root):
                child_fields = _stat_fields(child)
                if child_fields is not None:
                    total += _ticks(child_fields, False)
        return total / TICKS_PER_S


def postgres_tree(backend_pid: int) -> ProcessTree | None:
    """The server whose backend has ``backend_pid`` (from ``SELECT pg_backend_pid()``), if it runs here."""
    postmaster = parent_of(backend_pid)
    return None if postmaster is None else ProcessTree(postmaster, with_children=True)


def single_process(pid: int) -> ProcessTree | None:
    """One process (e.g. redis-server, from INFO's process_id), if it runs here."""
    return ProcessTree(pid, with_children=False) if _stat_fields(pid) is not None else None


def own_cpu_s() -> float:
    """This process's CPU seconds (every thread)."""
    times = os.times()
    return times.user + times.system
