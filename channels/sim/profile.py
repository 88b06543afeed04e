"""How a simulated channel behaves: which wire format, how slow, how unreliable.

Profiles are frozen values; the running simulator keeps the live fault settings in
`SimFaults`, which the admin endpoint replaces at run time ("take the channel down").
"""

from __future__ import annotations

import enum

import msgspec


class SimKind(enum.StrEnum):
    WALLET = "wxsim"
    BANK = "banksim"


class Latency(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Normal distribution, cut at zero; the delay a successful call takes."""

    mean_ms: float = 0.0
    stddev_ms: float = 0.0


class SimFaults(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Probabilities in [0, 1], drawn per call from the simulator's seeded RNG."""

    error_rate: float = 0.0  # HTTP 500 with the channel's system-error body; nothing happens
    timeout_rate: float = 0.0  # the call is processed, then the answer hangs for hang_ms
    no_notify_rate: float = 0.0  # the payer pays but no notify is ever sent
    create_latency: Latency = Latency()
    call_latency: Latency = Latency()
    hang_ms: int = 30_000
    # The next this many order creations hang like a timeout, whatever timeout_rate says; each one
    # counts down. A test's "exactly one lost answer" without a window in which retries hang too.
    hang_next_creates: int = 0
    # Payouts (see channels.sim.payouts): the first two act on payout creation only, after
    # the payout was accepted, so the caller cannot know whether it exists.
    payout_timeout_rate: float = 0.0  # the answer hangs for hang_ms
    payout_drop_rate: float = 0.0  # the connection is cut without an answer
    payout_fail_rate: float = 0.0  # an accepted payout later fails with BANK_REJECTED
    payout_settle_ms: int = 0  # how long an accepted payout stays processing
    # Payouts to numbers ending with this fail with ACCOUNT_INVALID; "" turns the rule off.
    payout_bad_number_suffix: str = "000000"
    # banksim only: a payout create is accepted, then answered with the business code ACQ.SYSTEM_ERROR, which
    # (as at Alipay) says nothing about whether the transfer exists.
    payout_system_error_rate: float = 0.0
    # banksim only: every payout answer (create and query) reports the amount off by this many minor units,
    # as a channel bug or a tampered answer would. 0: the truth.
    payout_report_skew_minor: int = 0
    # Payout queries (both wires) answer "no such payout" (ORDER_NOT_EXIST) although the channel holds it: a
    # lookup glitch at the channel (a replica behind, an index rebuilt). The payout itself is untouched.
    payout_query_not_found_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("payout_settle_ms", "hang_next_creates"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        for name in ("error_rate", "timeout_rate", "no_notify_rate", "payout_timeout_rate", "payout_drop_rate",
                     "payout_fail_rate", "payout_system_error_rate", "payout_query_not_found_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {rate}")


class SimProfile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    kind: SimKind
    merchant_id: str = "sim-merchant"
    key: str = "sim-secret-key-0123456789abcdef"
    key_serial: str = "1"
    currency: str = "CNY"
    faults: SimFaults = SimFaults()
    # Seconds to wait before each notify attempt; the first usually 0. Bounded by its length.
    notify_schedule_s: tuple[float, ...] = (0.0, 15.0, 15.0, 30.0, 180.0, 1800.0, 3600.0)
    notify_timeout_s: float = 5.0
    order_ttl_s: int = 7200
    # What the merchant holds at the channel for payouts; successes spend it.
    payout_funds_minor: int = 10**13
    seed: int | None = None


PROFILES: dict[str, SimProfile] = {
    profile.name: profile
    for profile in (
        SimProfile(name="wxsim", kind=SimKind.WALLET),
        SimProfile(name="banksim", kind=SimKind.BANK, key="bank-sim-key-fedcba9876543210"),
        # The latency the voucher benchmark is specified against: 500 ms ± 200 ms.
        SimProfile(
            name="wxsim-slow",
            kind=SimKind.WALLET,
            faults=SimFaults(create_latency=Latency(500.0, 200.0), call_latency=Latency(50.0, 20.0)),
        ),
        SimProfile(
            name="banksim-flaky",
            kind=SimKind.BANK,
            key="bank-sim-key-fedcba9876543210",
            faults=SimFaults(
                error_rate=0.1,
                timeout_rate=0.05,
                no_notify_rate=0.1,
                create_latency=Latency(300.0, 150.0),
                hang_ms=10_000,
            ),
        ),
        # Payouts that take a while to settle, like a real interbank transfer (scaled down).
        SimProfile(name="wxsim-payout-slow", kind=SimKind.WALLET, faults=SimFaults(payout_settle_ms=3_000)),
        # Payout answers lost after acceptance (hang or cut), and some accepted payouts bounce.
        SimProfile(
            name="banksim-payout-flaky",
            kind=SimKind.BANK,
            key="bank-sim-key-fedcba9876543210",
            faults=SimFaults(
                payout_timeout_rate=0.1,
                payout_drop_rate=0.1,
                payout_fail_rate=0.1,
                payout_settle_ms=1_000,
                hang_ms=10_000,
            ),
        ),
    )
}


def engine_channel_entry(profile: SimProfile, url: str) -> str:
    """The engine's ``PAYENGINE_CHANNELS`` entry for this simulator at ``url``: ``name=kind,base_url,merchant_id,key``
    (the format of engine/channel_specs.py), named after the kind, the path its default notifies take."""
    return f"{profile.kind.value}={profile.kind.value},{url},{profile.merchant_id},{profile.key}"


def profile_named(name: str) -> SimProfile:
    """The built-in profile of that name; KeyError listing the known names otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown simulator profile {name!r}; known: {sorted(PROFILES)}") from None
