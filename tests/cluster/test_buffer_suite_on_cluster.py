"""The buffer's own tests (tests/buffer), run again with ``redis_client`` = the 3-master cluster.

Collected by name from their modules so new buffer tests join automatically. Left out: tests that
drive the standalone Redis itself (stop/restart it via ``servers.redis_dir``, or hand
``servers.redis_url`` to a subprocess or an app) and tests needing fixtures other than the buffer's
own - on the cluster those faults are covered by test_cluster_faults.py, which restarts a cluster
master and crashes a cluster flusher process.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from typing import Any

import tests.buffer

STANDALONE_ONLY = ("redis_dir", "redis_url", "subprocess", "flush_main", "create_app")
FIXTURES = {"pool", "redis_client", "servers", "sink", "booker", "owner", "side_pool", "tmp_path", "monkeypatch"}


def _buffer_tests() -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {}
    for info in pkgutil.iter_modules(tests.buffer.__path__):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"tests.buffer.{info.name}")
        for name, fn in vars(module).items():
            if not (name.startswith("test_") and inspect.isfunction(fn)):
                continue
            if any(word in inspect.getsource(fn) for word in STANDALONE_ONLY):
                continue
            if not set(inspect.signature(fn).parameters) <= FIXTURES:
                continue
            found[f"{name}__{info.name.removeprefix('test_')}"] = fn
    return found


globals().update(_buffer_tests())
