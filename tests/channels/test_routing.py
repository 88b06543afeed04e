"""Routing levels: basic filter, feature ranking, quality choice, breaker exclusion."""

from __future__ import annotations

from channels.breaker import BreakerPolicy, BreakerState, record
from channels.routing import (
    ChannelQuality,
    ChannelTraits,
    Exclusion,
    RouteRequest,
    route_channels,
)

CNY_QR = RouteRequest(currency="CNY", method="qr", amount_minor=1999)
BREAKERS = BreakerPolicy(failures_to_open=1, cool_down_s=30.0)


def traits(name: str, **changes: object) -> ChannelTraits:
    base: dict[str, object] = {"name": name, "currencies": frozenset({"CNY"}), "methods": frozenset({"qr"})}
    return ChannelTraits(**(base | changes))  # type: ignore[arg-type]  # test shorthand over kwargs


def route(
    channels: list[ChannelTraits],
    request: RouteRequest = CNY_QR,
    quality: dict[str, ChannelQuality] | None = None,
    breakers: dict[str, BreakerState] | None = None,
) -> tuple[tuple[str, ...], dict[str, Exclusion]]:
    decision = route_channels(request, channels, quality or {}, breakers or {}, BREAKERS, now_s=100.0)
    return decision.ranked, decision.excluded


def test_basic_factors_filter_with_a_reason_each() -> None:
    ranked, excluded = route(
        [
            traits("ok"),
            traits("off", enabled=False),
            traits("usd", currencies=frozenset({"USD"})),
            traits("card", methods=frozenset({"card"})),
            traits("small", amount_max_minor=1000),
            traits("big", amount_min_minor=5000),
        ]
    )
    assert ranked == ("ok",)
    assert excluded == {
        "off": Exclusion.DISABLED,
        "usd": Exclusion.CURRENCY,
        "card": Exclusion.METHOD,
        "small": Exclusion.AMOUNT,
        "big": Exclusion.AMOUNT,
    }


def test_refund_support_is_required_only_when_asked() -> None:
    channels = [traits("norefund", supports_refund=False, cost_bps=10), traits("refund", cost_bps=60)]
    assert route(channels)[0] == ("norefund", "refund")
    needs = RouteRequest("CNY", "qr", 1999, needs_refund=True)
    assert route(channels, needs) == (("refund",), {"norefund": Exclusion.NO_REFUND})


def test_features_rank_by_settlement_then_cost_bucket() -> None:
    channels = [
        traits("slow-cheap", settlement_days=3, cost_bps=10),
        traits("fast-dear", cost_bps=60),
        traits("fast-cheap", cost_bps=30),
    ]
    assert route(channels)[0] == ("fast-cheap", "fast-dear", "slow-cheap")


def test_quality_chooses_among_equally_ranked_channels() -> None:
    channels = [traits("a", cost_bps=31), traits("b", cost_bps=35)]  # same 10 bps bucket
    quality = {"a": ChannelQuality(0.95, 800.0, 500), "b": ChannelQuality(0.99, 900.0, 500)}
    assert route(channels, quality=quality)[0] == ("b", "a")
    same_rate = {"a": ChannelQuality(0.99, 800.0, 500), "b": ChannelQuality(0.99, 900.0, 500)}
    assert route(channels, quality=same_rate)[0] == ("a", "b"), "then lower latency"


def test_unhealthy_channel_drops_behind_healthy_ones_but_stays_as_last_resort() -> None:
    channels = [traits("cheap", cost_bps=10), traits("dear", cost_bps=90)]
    quality = {"cheap": ChannelQuality(0.5, 100.0, 100), "dear": ChannelQuality(0.99, 100.0, 100)}
    assert route(channels, quality=quality)[0] == ("dear", "cheap")


def test_few_samples_are_not_trusted_to_mark_a_channel_unhealthy() -> None:
    channels = [traits("cheap", cost_bps=10), traits("dear", cost_bps=90)]
    assert route(channels, quality={"cheap": ChannelQuality(0.0, 100.0, 3)})[0] == ("cheap", "dear")


def test_channel_with_open_breaker_is_excluded_until_its_cool_down_ends() -> None:
    opened = record(BreakerState(), BREAKERS, 90.0, False)
    channels = [traits("down", cost_bps=10), traits("up", cost_bps=90)]
    assert route(channels, breakers={"down": opened}) == (("up",), {"down": Exclusion.BREAKER_OPEN})
    cooled = record(BreakerState(), BREAKERS, 60.0, False)
    assert route(channels, breakers={"down": cooled})[0] == ("down", "up")


def test_nothing_eligible_gives_an_empty_ranking() -> None:
    assert route([traits("usd", currencies=frozenset({"USD"}))])[0] == ()
