"""What a job handler answers, and the backoff between retries. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Done:
    note: str = ""
    # The handler already marked the job done in the transaction of its effect (one commit, not two).
    recorded: bool = False


@dataclass(frozen=True, slots=True)
class Retry:
    delay_s: float
    error: str


@dataclass(frozen=True, slots=True)
class Failed:
    error: str


JobResult = Done | Retry | Failed


def backoff_s(attempt: int, base_ms: int, max_ms: int, rng: random.Random | None = None) -> float:
    """Exponential with full jitter: attempt 1 waits up to base, each further attempt doubles the bound.

    Jitter spreads retries so a channel coming back is not hit by every waiting job at the same instant."""
    bound_ms = min(max_ms, base_ms * 2 ** max(0, attempt - 1))
    return (rng or random).uniform(bound_ms / 2, bound_ms) / 1000
