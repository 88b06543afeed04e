"""Real simulators on real sockets, a real notify receiver, adapters pointed at them.

Profiles here compress the channel's notify schedule to milliseconds so retries can be
watched within a test; faults are switched on per test through the admin endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import msgspec
import pytest
from aiohttp import web

from channels.protocol import Channel, ChannelConfig, NotifyAnswer
from channels.registry import build_channel
from channels.sim import RunningSimulator, SimFaults, SimKind, SimProfile, start_simulator
from tests.serving import serving

FAST_SCHEDULE_S = (0.0, 0.05, 0.05, 0.1, 0.2, 0.4)
CLIENT_TIMEOUT_S = 0.5


def fast_profile(kind: SimKind, **changes: object) -> SimProfile:
    base = SimProfile(
        name=f"{kind.value}-test",
        kind=kind,
        notify_schedule_s=FAST_SCHEDULE_S,
        notify_timeout_s=1.0,
        faults=SimFaults(hang_ms=3_000),
        seed=20261122,
        key="bank-test-key" if kind is SimKind.BANK else "wallet-test-key",
    )
    return msgspec.structs.replace(base, **changes)


@dataclass
class NotifyReceiver:
    """The merchant's notify endpoint: records every delivery, answers from a script."""

    url: str
    default: NotifyAnswer
    script: list[NotifyAnswer] = field(default_factory=list)
    received: asyncio.Queue[tuple[dict[str, str], bytes]] = field(default_factory=asyncio.Queue)

    async def handle(self, request: web.Request) -> web.Response:
        await self.received.put((dict(request.headers), await request.read()))
        answer = self.script.pop(0) if self.script else self.default
        return web.Response(status=answer.status, body=answer.body, content_type=answer.content_type)

    async def next(self, timeout_s: float = 3.0) -> tuple[dict[str, str], bytes]:
        return await asyncio.wait_for(self.received.get(), timeout_s)


@dataclass
class Rig:
    """One simulator, the adapter talking to it and the receiver its notifies go to."""

    sim: RunningSimulator
    channel: Channel
    receiver: NotifyReceiver
    http: aiohttp.ClientSession

    async def pay(self, out_trade_no: str, **extra: object) -> dict[str, object]:
        async with self.http.post(f"{self.sim.url}/sim/pay", json={"out_trade_no": out_trade_no, **extra}) as r:
            assert r.status == 200, await r.text()
            answer: dict[str, object] = await r.json()
            return answer

    async def set_faults(self, **faults: object) -> None:
        async with self.http.put(f"{self.sim.url}/sim/admin/faults", json=faults) as r:
            assert r.status == 200, await r.text()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@contextlib.asynccontextmanager
async def running_rig(http: aiohttp.ClientSession, kind: SimKind) -> AsyncIterator[Rig]:
    profile = fast_profile(kind)
    receiver = NotifyReceiver(url="", default=NotifyAnswer(500, "text/plain", b"not ready"))
    receiver_app = web.Application()
    receiver_app.router.add_post("/notify", receiver.handle)
    async with serving(receiver_app) as served:
        receiver.url = f"{served.url}/notify"
        sim = await start_simulator(profile)
        try:
            config = ChannelConfig(
                name=profile.kind.value,
                base_url=sim.url,
                merchant_id=profile.merchant_id,
                key=profile.key,
                notify_url=receiver.url,
                timeout_s=CLIENT_TIMEOUT_S,
                key_serial=profile.key_serial,
            )
            channel = build_channel(http, config)
            receiver.default = channel.notify_ack()
            yield Rig(sim, channel, receiver, http)
        finally:
            await sim.close()


@pytest.fixture(params=[SimKind.WALLET, SimKind.BANK], ids=["wxsim", "banksim"])
async def rig(request: pytest.FixtureRequest, http: aiohttp.ClientSession) -> AsyncIterator[Rig]:
    async with running_rig(http, request.param) as built:
        yield built


@pytest.fixture
async def wallet_rig(http: aiohttp.ClientSession) -> AsyncIterator[Rig]:
    async with running_rig(http, SimKind.WALLET) as built:
        yield built


@pytest.fixture
async def bank_rig(http: aiohttp.ClientSession) -> AsyncIterator[Rig]:
    async with running_rig(http, SimKind.BANK) as built:
        yield built
