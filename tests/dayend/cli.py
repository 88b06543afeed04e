"""Run ``payengine`` subcommands against a test world in a subprocess, optionally killing it at a step."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from tests.dayend.world import World

PAUSE_WAIT_S = 60


def _env(w: World, pause_at: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYENGINE_")}
    env.update(PAYENGINE_DATABASE_URL=w.database_url, PAYENGINE_REDIS_URL=w.redis_url,
               PAYENGINE_DAYEND_PAUSE_AT=pause_at, PAYENGINE_DAYEND_POLL_MS="50", PAYENGINE_LOG_LEVEL="WARNING")
    env.update(extra or {})
    return env


async def run_cli(w: World, *args: str, pause_at: str = "", extra_env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``payengine <args>``; with ``pause_at``, SIGKILL it once it reports it paused there."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine.cli.main", *args, env=_env(w, pause_at, extra_env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    if not pause_at:
        out, err = await asyncio.wait_for(proc.communicate(), PAUSE_WAIT_S)
        assert proc.returncode is not None
        return proc.returncode, out.decode() + err.decode()
    seen: list[str] = []
    async with asyncio.timeout(PAUSE_WAIT_S):
        while True:
            line = (await proc.stderr.readline()).decode()
            assert line, f"exited before pausing at {pause_at}: {''.join(seen)}"
            seen.append(line)
            if line.startswith("paused:") and pause_at in line:
                break
    os.kill(proc.pid, signal.SIGKILL)
    assert await proc.wait() == -signal.SIGKILL
    return -signal.SIGKILL, "".join(seen)
