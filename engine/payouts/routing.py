"""Which channels may carry a payout.

A channel can pay out when its adapter implements the payout calls (create_payout, query_payout). A payout only
ever goes to such a channel that the merchant may use. A channel the merchant named is the payout's for good
(its breaker being open only defers the payout). An unnamed one may move to the best other candidate, but only
while the payout is pending: once something was sent it may have arrived, and the same out_payout_no at a
second channel could pay twice (store.mark_sending refuses that move too). An unnamed pending payout that no
channel could ever take (none the merchant may use can pay out, or each refuses its currency or amount) is held
for a person (decision.on_no_channel) instead of waiting, frozen, for good; an open breaker only defers it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import msgspec

from channels.registry import adapter_classes
from channels.routing import DEFAULT_QUALITY_POLICY, Exclusion, RouteRequest, quality_key, route_channels
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


@dataclass(frozen=True, slots=True)
class PayoutRoute:
    ranked: list[str]  # the candidates that can take the payout now, best first
    # Why no channel could ever take it as configured (None: some can, now or once a breaker admits calls).
    impossible: str | None = None


def route_payout(gw: Gateway, currency: str, amount_minor: int, current: str,
                 candidates: Sequence[str]) -> PayoutRoute:
    """The candidates that can take this payout now (currency, amount, breaker), best first; the payout's current
    channel first while it is healthy (a move is for outages, not for cost). When none can, whether that is for
    good (no candidate, or each refuses the currency or amount) or only while breakers stay open."""
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
    return PayoutRoute(ranked, None if ranked else never_routable(decision.excluded))


def never_routable(excluded: Mapping[str, Exclusion]) -> str | None:
    """Why no candidate can ever take the payout, from what routing left out: None when a breaker left one out
    (it admits calls again after its cool-down)."""
    if Exclusion.BREAKER_OPEN in excluded.values():
        return None
    if not excluded:
        return "no channel that can pay out is one the merchant may use"
    return "every channel the merchant may use refuses it: " + ", ".join(
        f"{name} ({reason.value})" for name, reason in sorted(excluded.items()))
