"""What the gateway has seen of each channel: its circuit breaker and its recent quality.

In memory per process on purpose: every gateway process judges channels by its own calls, so a
breaker opens within one process's failure burst without a shared round trip per call. Routing reads
`quality()` and `breakers()`; the admin endpoint reads `snapshot()`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from channels.breaker import BreakerPhase, BreakerPolicy, BreakerState, admit, is_admitting, record
from channels.routing import ChannelQuality
from engine.gateway.metrics import BREAKER_CHANGES

# Calls remembered per channel for quality (how old they may be comes from settings).
SAMPLES_MAX = 512
QUALITY_REFRESH_S = 0.25


@dataclass
class _Channel:
    breaker: BreakerState = field(default_factory=BreakerState)
    # (time_s, succeeded, latency_ms) of recent calls, oldest first.
    calls: deque[tuple[float, bool, float]] = field(default_factory=lambda: deque(maxlen=SAMPLES_MAX))


class ChannelHealth:
    def __init__(self, policy: BreakerPolicy, quality_window_s: float = 60.0) -> None:
        self.policy = policy
        # A demoted channel gets little traffic, so its rate recovers by old failures ageing out of this.
        self.quality_window_s = quality_window_s
        self._quality: tuple[float, dict[str, ChannelQuality]] | None = None
        self._channels: dict[str, _Channel] = {}

    def _of(self, name: str) -> _Channel:
        return self._channels.setdefault(name, _Channel())

    def admit(self, name: str, now_s: float) -> bool:
        """Ask the breaker for one call; takes the half-open probe slot when it grants one."""
        state = self._of(name)
        allowed, state.breaker = admit(state.breaker, self.policy, now_s)
        return allowed

    def is_admitting(self, name: str, now_s: float) -> bool:
        return is_admitting(self._of(name).breaker, self.policy, now_s)

    def record(self, name: str, succeeded: bool, latency_ms: float, now_s: float) -> None:
        """One call's outcome. A business refusal is a success here: the channel is up and answering."""
        state = self._of(name)
        before = state.breaker.phase
        state.breaker = record(state.breaker, self.policy, now_s, succeeded)
        state.calls.append((now_s, succeeded, latency_ms))
        if before is not state.breaker.phase:
            BREAKER_CHANGES.labels(name, state.breaker.phase.value).inc()

    def phase(self, name: str) -> BreakerPhase:
        return self._of(name).breaker.phase

    def breakers(self) -> dict[str, BreakerState]:
        return {name: state.breaker for name, state in self._channels.items()}

    def quality(self, now_s: float) -> dict[str, ChannelQuality]:
        """Success rate and p50 latency per channel over the window; recomputed at most every
        QUALITY_REFRESH_S, since routing asks for every voucher and the answer moves slowly."""
        if self._quality is not None and now_s - self._quality[0] < QUALITY_REFRESH_S:
            return self._quality[1]
        found = self._measure(now_s)
        self._quality = (now_s, found)
        return found

    def _measure(self, now_s: float) -> dict[str, ChannelQuality]:
        found: dict[str, ChannelQuality] = {}
        horizon_s = now_s - self.quality_window_s
        for name, state in self._channels.items():
            recent = [c for c in state.calls if c[0] >= horizon_s]
            if not recent:
                continue
            latencies = sorted(c[2] for c in recent if c[1])
            p50 = latencies[len(latencies) // 2] if latencies else 0.0
            found[name] = ChannelQuality(sum(1 for c in recent if c[1]) / len(recent), p50, len(recent))
        return found

    def snapshot(self, now_s: float) -> dict[str, dict[str, object]]:
        quality = self._measure(now_s)
        return {
            name: {
                "breaker": state.breaker.phase.value,
                "success_rate": quality[name].success_rate if name in quality else None,
                "p50_latency_ms": quality[name].p50_latency_ms if name in quality else None,
                "samples": quality[name].samples if name in quality else 0,
            }
            for name, state in sorted(self._channels.items())
        }
