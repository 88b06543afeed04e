"""Choosing a channel for a payment, in three levels; pure, everything passed in.

1. Basic factors filter: enabled, currency, method, amount limits, refund support when the
   payment needs it. A channel that fails one can never serve the payment.
2. Feature factors rank: faster settlement, then lower cost (in buckets of `cost_bucket_bps`
   so a 1 bps difference does not override quality).
3. Quality factors choose: among channels the features rank equal, higher live success rate,
   then lower p50 latency. A channel whose success rate fell below the floor (with enough
   samples to trust it) drops behind all healthy ones but stays as a last resort; a channel
   whose breaker does not admit calls is left out.

The result is the whole ordered list, so the gateway can fail over without routing again.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

import msgspec

from channels.breaker import BreakerPolicy, BreakerState, is_admitting


class ChannelTraits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    currencies: frozenset[str]
    methods: frozenset[str]
    amount_min_minor: int = 1
    amount_max_minor: int = 10**12
    enabled: bool = True
    supports_refund: bool = True
    settlement_days: int = 1
    cost_bps: int = 60


class RouteRequest(msgspec.Struct, frozen=True):
    currency: str
    method: str
    amount_minor: int
    needs_refund: bool = False


class ChannelQuality(msgspec.Struct, frozen=True):
    """The gateway's own recent measurements of one channel."""

    success_rate: float
    p50_latency_ms: float
    samples: int


class QualityPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    success_rate_min: float = 0.9
    samples_min: int = 20
    cost_bucket_bps: int = 10


DEFAULT_QUALITY_POLICY = QualityPolicy()


class Exclusion(enum.StrEnum):
    DISABLED = "disabled"
    CURRENCY = "currency"
    METHOD = "method"
    AMOUNT = "amount"
    NO_REFUND = "no_refund"
    BREAKER_OPEN = "breaker_open"


class RouteDecision(msgspec.Struct, frozen=True):
    ranked: tuple[str, ...]  # best first; empty when nothing can serve the payment
    excluded: dict[str, Exclusion]


def basic_exclusion(request: RouteRequest, traits: ChannelTraits) -> Exclusion | None:
    """Level 1: why this channel can never serve the request, or None when it can."""
    if not traits.enabled:
        return Exclusion.DISABLED
    if request.currency not in traits.currencies:
        return Exclusion.CURRENCY
    if request.method not in traits.methods:
        return Exclusion.METHOD
    if not traits.amount_min_minor <= request.amount_minor <= traits.amount_max_minor:
        return Exclusion.AMOUNT
    if request.needs_refund and not traits.supports_refund:
        return Exclusion.NO_REFUND
    return None


def feature_key(traits: ChannelTraits, policy: QualityPolicy) -> tuple[int, int]:
    """Level 2: smaller sorts first."""
    return traits.settlement_days, traits.cost_bps // policy.cost_bucket_bps


def quality_key(quality: ChannelQuality | None, policy: QualityPolicy) -> tuple[bool, float, float]:
    """Level 3: (unhealthy, -success rate, p50). A channel with too few samples counts as
    healthy at the floor rate: it is not punished for being new, nor preferred over a
    channel that has proven better."""
    if quality is None or quality.samples < policy.samples_min:
        return False, -round(policy.success_rate_min, 2), 0.0
    unhealthy = quality.success_rate < policy.success_rate_min
    return unhealthy, -round(quality.success_rate, 2), quality.p50_latency_ms


def route_channels(
    request: RouteRequest,
    channels: Sequence[ChannelTraits],
    quality: Mapping[str, ChannelQuality],
    breakers: Mapping[str, BreakerState],
    breaker_policy: BreakerPolicy,
    now_s: float,
    policy: QualityPolicy = DEFAULT_QUALITY_POLICY,
) -> RouteDecision:
    """Rank the channels that can serve `request`; say why each other one was left out."""
    excluded: dict[str, Exclusion] = {}
    candidates: list[ChannelTraits] = []
    for traits in channels:
        reason = basic_exclusion(request, traits)
        breaker = breakers.get(traits.name)
        if reason is None and breaker is not None and not is_admitting(breaker, breaker_policy, now_s):
            reason = Exclusion.BREAKER_OPEN
        if reason is None:
            candidates.append(traits)
        else:
            excluded[traits.name] = reason

    def order(traits: ChannelTraits) -> tuple[bool, tuple[int, int], float, float, str]:
        unhealthy, rate, p50 = quality_key(quality.get(traits.name), policy)
        return unhealthy, feature_key(traits, policy), rate, p50, traits.name

    return RouteDecision(tuple(t.name for t in sorted(candidates, key=order)), excluded)
