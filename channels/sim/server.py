"""Starting a simulator: from a test fixture (`start_simulator`) or the CLI (`run_simulator`)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from channels.sim.admin import SimAdmin
from channels.sim.bank import BankSim
from channels.sim.notifier import Notifier
from channels.sim.profile import SimKind, SimProfile, engine_channel_entry, profile_named
from channels.sim.runtime import SimChannel, SimRuntime
from channels.sim.wx import WxSim

logger = logging.getLogger(__name__)

RUNTIME_KEY = web.AppKey("sim_runtime", SimRuntime)


def _channel_for(runtime: SimRuntime) -> SimChannel:
    if runtime.profile.kind is SimKind.WALLET:
        return WxSim(runtime)
    return BankSim(runtime)


def build_app(profile: SimProfile, session: aiohttp.ClientSession) -> web.Application:
    """The simulator as an aiohttp app; `session` carries its notifies to the merchant."""
    runtime = SimRuntime(profile, Notifier(session, profile.notify_schedule_s, profile.notify_timeout_s))
    channel = _channel_for(runtime)
    app = web.Application()
    app[RUNTIME_KEY] = runtime
    channel.add_routes(app)
    SimAdmin(runtime, channel).add_routes(app)

    async def stop_notifier(_: web.Application) -> None:
        await runtime.notifier.close()

    app.on_shutdown.append(stop_notifier)
    return app


@dataclass
class RunningSimulator:
    """A simulator listening on a real socket. `runtime` is exposed for tests to inspect."""

    profile: SimProfile
    url: str
    runtime: SimRuntime
    _runner: web.AppRunner
    _session: aiohttp.ClientSession

    async def close(self) -> None:
        await self._runner.cleanup()
        await self._session.close()


async def start_simulator(
    profile: SimProfile, host: str = "127.0.0.1", port: int = 0, notify_base_url: str | None = None
) -> RunningSimulator:
    """Listen on host:port (0 picks a free port) and return once connections are accepted.

    `notify_base_url` (e.g. the engine's `http://127.0.0.1:8080`) is where notifies go for
    orders created without a notify URL: `{notify_base_url}/channels/{wxsim|banksim}/notify`.
    """
    session = aiohttp.ClientSession()
    app = build_app(profile, session)
    if notify_base_url:
        app[RUNTIME_KEY].default_notify_url = f"{notify_base_url.rstrip('/')}/channels/{profile.kind.value}/notify"
    # A hanging call must not hold up shutdown for hang_ms.
    runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = int(runner.addresses[0][1])
    logger.debug("channel simulator listening", extra={"profile": profile.name, "port": bound_port})
    return RunningSimulator(profile, f"http://{host}:{bound_port}", app[RUNTIME_KEY], runner, session)


def wiring_text(running: RunningSimulator, notify_base_url: str | None) -> str:
    """What to tell the engine so it uses this simulator, and how a payer pays one of its vouchers."""
    profile, kind = running.profile, running.profile.kind.value
    notifies = (f"orders without a notify_url notify {notify_base_url.rstrip('/')}/channels/{kind}/notify"
                if notify_base_url else "orders without a notify_url get no notify (--notify-base-url sets one)")
    return "\n".join([
        f"channel simulator {profile.name} listening on {running.url}",
        "  configure the engine with (several channels: join entries with ';'):",
        f"    PAYENGINE_CHANNELS='{engine_channel_entry(profile, running.url)}'",
        f"    PAYENGINE_DEFAULT_CHANNEL={kind}   # channel payments that name no channel",
        f"  notifies: the engine gives each order its notify URL (PAYENGINE_PUBLIC_URL, else http://HOST:PORT,"
        f" then /channels/{kind}/notify); {notifies}",
        f"  pay a voucher: curl -s -X POST {running.url}/sim/pay -d '{{\"pay_url\": \"<the voucher pay_url>\"}}'",
    ])


def run_simulator(profile_name: str, host: str, port: int, notify_base_url: str | None) -> None:
    """Block serving the named profile until interrupted (`payengine channel-sim`); prints where it listens and
    the engine settings that point at it."""

    async def serve() -> None:
        running = await start_simulator(profile_named(profile_name), host, port, notify_base_url)
        print(wiring_text(running, notify_base_url), flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await running.close()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
