"""`payengine serve` stops the embedded servers it started when it stops (unless asked to keep them) and never
the ones it found running."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from engine import embedded
from engine.cli.serve import _stop_note, _stop_servers
from engine.db import ServerUrls, ensure_servers
from engine.settings import Settings
from tests.conftest import Servers


def test_servers_found_running_are_not_counted_as_started(servers: Servers) -> None:
    if servers.root is None:
        pytest.skip("external servers: no embedded data dir to reuse")
    urls = ensure_servers(Settings(data_dir=servers.root))  # the session's servers, running already
    assert (urls.started_postgres, urls.started_redis, urls.started) == (None, None, [])
    external = ensure_servers(Settings(database_url=servers.database_url, redis_url=servers.redis_url))
    assert external.started == []


def test_a_started_server_is_kept_when_asked_and_stopped_otherwise(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(tempfile.mkdtemp(prefix="pe-keep-", dir="/tmp"))  # unix socket paths must stay short
    try:
        redis = embedded.start_redis(root / "redis")
        assert redis.started and not embedded.start_redis(root / "redis").started  # the second call reuses it
        urls = ServerUrls("postgresql://unused", redis.url, started_redis=redis.data_dir)
        # What the banner promises Ctrl-C will do.
        assert "stops the embedded Redis this run started" in _stop_note(urls, keep_servers=False)
        assert "keep running" in _stop_note(urls, keep_servers=True)
        assert "left running" in _stop_note(ServerUrls(urls.database_url, urls.redis_url), keep_servers=False)
        _stop_servers(urls, keep_servers=True)
        assert _alive(redis.pid)
        assert "embedded Redis keep running" in capsys.readouterr().out
        _stop_servers(urls, keep_servers=False)
        assert not _alive(redis.pid)
        assert "stopped the embedded Redis this run started" in capsys.readouterr().out
    finally:
        embedded.stop_redis(root / "redis")
        shutil.rmtree(root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # redis-server daemonizes: it is no child of ours, so no zombie to mistake for alive
    except ProcessLookupError:
        return False
    return True
