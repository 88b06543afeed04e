"""The channel simulators ``payengine serve --demo`` runs beside the engine, so a channel payment completes.

They run on a thread of the serving process with an event loop of their own, not as child processes: they
end with it whatever ends it (Ctrl-C, an error, a kill), and their free ports are known before the engine's
workers start, so PAYENGINE_CHANNELS can name them. Where they listen is also written to a run file in the
data dir, which ``payengine demo`` (another process) reads to pay a voucher; the file goes when they stop.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from channels.sim import RunningSimulator, start_simulator
from channels.sim.profile import engine_channel_entry, profile_named
from engine.channel_specs import ChannelSpec, parse_channel_specs

DEMO_PROFILES = ("wxsim", "banksim")
RUN_FILE = "channel-sims.json"
SIM_HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class SimulatorsUp:
    urls: dict[str, str]  # channel name -> the simulator's base URL
    channels: tuple[ChannelSpec, ...]  # what PAYENGINE_CHANNELS would hold for them

    @staticmethod
    def pay_command(url: str) -> str:
        """The call a payer makes to pay a voucher at the simulator at ``url``."""
        return f"curl -s -X POST {url}/sim/pay -d '{{\"pay_url\": \"<the voucher pay_url>\"}}'"


class SimulatorThread:
    """Simulators of the given profiles on free ports of 127.0.0.1, until ``stop``."""

    def __init__(self, profiles: tuple[str, ...], notify_base_url: str) -> None:
        self._profiles = profiles
        self._notify_base_url = notify_base_url
        self._ready = threading.Event()
        self._up: SimulatorsUp | None = None
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="channel-simulators", daemon=True)

    def start(self) -> SimulatorsUp:
        """Start them; returns once every one accepts connections. RuntimeError when they could not start."""
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError(f"channel simulators did not start within {START_TIMEOUT_S:.0f} s")
        if self._error is not None or self._up is None:
            raise RuntimeError(f"channel simulators did not start: {self._error!r}")
        return self._up

    def stop(self) -> None:
        """Stop them (in-flight notifies are dropped); returns once their sockets are closed."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop ended already
                pass
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT_S)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); a thread has nobody else to tell
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        running: list[RunningSimulator] = []
        try:
            for name in self._profiles:
                running.append(await start_simulator(profile_named(name), SIM_HOST, 0, self._notify_base_url))
            entries = ";".join(engine_channel_entry(sim.profile, sim.url) for sim in running)
            self._up = SimulatorsUp({sim.profile.kind.value: sim.url for sim in running}, parse_channel_specs(entries))
            self._ready.set()
            await self._stop.wait()
        finally:
            for sim in running:
                await sim.close()


def write_run_file(data_dir: Path, engine_url: str, up: SimulatorsUp) -> Path:
    path = data_dir / RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"engine": engine_url, "simulators": up.urls}))
    return path


def read_run_file(data_dir: Path) -> dict[str, str]:
    """Channel name -> simulator URL of the ``serve --demo`` running on this data dir ({} when none runs)."""
    try:
        found = json.loads((data_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        return {}
    sims = found.get("simulators") if isinstance(found, dict) else None
    return {str(k): str(v) for k, v in sims.items()} if isinstance(sims, dict) else {}
