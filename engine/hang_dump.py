"""Where a hung process waits: `kill -USR1 <pid>` prints every asyncio task's stack and every thread's.

Installed by the test session, the benchmark runner and ``payengine serve``. ``hang_watchdog`` bounds a
long run (a bench in CI): past its limit it prints the same dump and, shortly after, ends the process
with exit 1, so a hang fails CI in minutes with the place it hung, not at the CI's time limit.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

EXIT_AFTER_DUMP_S = 30


def dump_tasks(signum: int = 0, frame: object = None) -> None:
    """Print the running loop's asyncio tasks (a hung await shows where it waits) and every thread's stack."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    tasks = asyncio.all_tasks(loop) if loop is not None else set()
    print(f"\n=== {len(tasks)} asyncio tasks ===", file=sys.stderr)
    for task in tasks:
        task.print_stack(limit=30, file=sys.stderr)
    faulthandler.dump_traceback(all_threads=True)


def install_task_dump() -> None:
    """SIGUSR1 -> ``dump_tasks`` (main thread only; the signal lands between bytecodes of the loop)."""
    signal.signal(signal.SIGUSR1, dump_tasks)


@contextmanager
def hang_watchdog(limit_s: float, what: str, before_dump: Callable[[], None] | None = None) -> Iterator[None]:
    """If the block still runs after ``limit_s``: dump tasks and threads, and exit 1 ``EXIT_AFTER_DUMP_S``
    later. ``before_dump`` (a callable) runs first, e.g. to let the dump through pytest's capture."""

    def fire() -> None:
        if before_dump is not None:
            before_dump()
        print(f"\n=== {what} still running after {limit_s:g} s ===", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGUSR1)

    timer = threading.Timer(limit_s, fire)
    timer.daemon = True
    timer.start()
    faulthandler.dump_traceback_later(limit_s + EXIT_AFTER_DUMP_S, exit=True)
    try:
        yield
    finally:
        timer.cancel()
        faulthandler.cancel_dump_traceback_later()
