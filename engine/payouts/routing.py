"""Which channels may carry a payout.

A channel can pay out when its adapter implements the payout calls (create_payout, query_payout). A payout only
ever goes to such a channel that the merchant may use. A channel the merchant named is the payout's for good
(its breaker being open only defers the payout). An unnamed one may move to the best other candidate, but only
while the payout is pending: once something was sent it may have arrived, and the same out_payout_no at a
second channel could pay twice (store.mark_sending refuses that move too).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import msgspec

from channels.registry import adapter_classes
from channels.routing import DEFAULT_QUALITY_POLICY, RouteRequest, quality_key, route_channels
from engine.gateway.context import Gateway

PAYOUT_METHOD = "payout"
_PAYOUT_CALLS = ("create_payout", "query_payout")


def can_pay_out(kind: str) -> bool:
    """Whether the adapter module `kind` (banksim, wxsim, ...) implements the payout calls."""
    factory = adapter_classes().get(kind)
    return factory is not None and all(callable(getattr(factory, call, None)) for call in _PAYOUT_CALLS)


def payout_candidates(kinds: Mapping[str, str], allowed: Sequence[str] | None) -> list[str]:
    """Channel names (name -> adapter kind, in configured order) that can pay out and that the merchant may use
    (`allowed` None: every channel)."""
    return [name for name, kind in kinds.items() if (allowed is None or name in allowed) and can_pay_out(kind)]


def rank_payout_channels(gw: Gateway, currency: str, amount_minor: int, current: str,
                         candidates: Sequence[str]) -> list[str]:
    """The candidates that can take this payout now (currency, amount, breaker), best first; the payout's current
    channel first while it is healthy (a move is for outages, not for cost)."""
    now_s = time.monotonic()
    quality = gw.health.quality(now_s)
    traits = [msgspec.structs.replace(gw.channels[name].traits, methods=frozenset({PAYOUT_METHOD}))
              for name in candidates if name in gw.channels]
    decision = route_channels(RouteRequest(currency=currency, method=PAYOUT_METHOD, amount_minor=amount_minor),
                              traits, quality, gw.health.breakers(), gw.health.policy, now_s)
    ranked = list(decision.ranked)
    if current in ranked and not quality_key(quality.get(current), DEFAULT_QUALITY_POLICY)[0]:
        ranked.remove(current)
        ranked.insert(0, current)
    return ranked
