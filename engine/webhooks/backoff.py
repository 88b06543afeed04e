"""When to try a failed delivery again, and when to give up. Pure: time comes in as an argument."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_ms: int
    max_ms: int
    window_s: int  # retries continue until the event's window is at least this old

    def delay_s(self, attempts: int, rng: random.Random | random.SystemRandom) -> float:
        """Delay after the ``attempts``-th failed attempt: base * 2^(attempts-1), capped, with jitter.

        "Equal jitter" (half fixed, half random) keeps the schedule exponential while spreading the
        retries of many events that failed together (a merchant's endpoint down) over time."""
        exp = min(max(attempts - 1, 0), 40)
        ceiling = min(self.max_ms, self.base_ms * (1 << exp)) / 1000
        return ceiling / 2 + rng.uniform(0, ceiling / 2)

    def next_attempt_at(self, window_started_at: datetime, attempts: int, now: datetime,
                        rng: random.Random | random.SystemRandom) -> datetime | None:
        """The time of the next attempt, or None when the event is dead.

        An event is given up only once a failure happens after its window has fully passed, so retries
        always span at least ``window_s``."""
        if now - window_started_at >= timedelta(seconds=self.window_s):
            return None
        return now + timedelta(seconds=self.delay_s(attempts, rng))
