"""Channel simulators: real HTTP servers that behave like a wallet or a bank gateway.

Start one with `await start_simulator(profile)` (tests, bench) or `run_simulator(name, host,
port, notify_base_url)` (CLI). Besides each channel's own API (`/v3/...` for wxsim,
`POST /gateway.do` for banksim) every simulator serves:

- `POST /sim/pay` `{"out_trade_no" | "channel_order_id" | "pay_url", "amount_minor"?}`: the payer
  pays; answers `{"out_trade_no", "channel_txn_id", "paid_minor", "notify_sent"}`;
- `GET|PUT /sim/admin/faults`: live `SimFaults` (a PUT merges into the profile's values);
- `PUT /sim/admin/discrepancies/{yyyy-mm-dd}`: `Discrepancies` seeded into that day's statement;
- `GET /sim/admin/notifies`: the last notify attempts and whether each was acked;
- `GET /sim/statements/{yyyy-mm-dd}`: the daily statement CSV in the channel's own format,
  payments, refunds and finished payouts;
- payouts: `GET|PUT /sim/admin/payout-funds`, `PUT /sim/admin/payout-holders`,
  `GET /sim/admin/payouts/{out_payout_no}`, `POST /sim/admin/payouts/{out_payout_no}/settle`
  (see `channels.sim.payout_admin`; the rules in `channels.sim.payouts`, the wires in
  `wx_payouts` and `bank_payouts`, the `payout_*` fault settings in `SimFaults`).

The server half (aiohttp) loads on first use of its names, so reading the profiles (`payengine --help`
lists them) costs msgspec, not the web stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from channels.sim.profile import PROFILES, Latency, SimFaults, SimKind, SimProfile, profile_named

if TYPE_CHECKING:
    from channels.sim.server import RunningSimulator, build_app, run_simulator, start_simulator

_SERVER_NAMES = frozenset({"RunningSimulator", "build_app", "run_simulator", "start_simulator"})


def __getattr__(name: str) -> object:
    if name in _SERVER_NAMES:
        from channels.sim import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PROFILES",
    "Latency",
    "RunningSimulator",
    "SimFaults",
    "SimKind",
    "SimProfile",
    "build_app",
    "profile_named",
    "run_simulator",
    "start_simulator",
]
