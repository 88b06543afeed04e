"""Every Redis key the controls use, built here and nowhere else.

All keys of one subject (a customer of a merchant, or a merchant) share one hash tag, so in a Redis
Cluster one slot holds the subject's day and month counters, its velocity logs and its histories (of every
currency), and each check-and-increment script touches exactly one slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from engine.controls.limits import METHODS

PREFIX = "pe:lim"
ANY_METHOD = "*"  # the counter of all methods together
DAY_TTL_S = 3 * 86400      # a day's counters outlive the day (a late release still finds them)
MONTH_TTL_S = 35 * 86400
HISTORY_TTL_S = 30 * 86400  # refreshed on every admission; rebuilt from PostgreSQL when gone
PRELOADED_TTL_S = 120       # far longer than an admission takes from its usage row to its check
MARKER_TTL_S = 120          # far longer than a client retries one script call (~240k keys at 1000/s)


@dataclass(frozen=True, slots=True)
class SubjectKeys:
    """day / month: hashes of counters, field ``currency|method|a`` (amount) and ``|n`` (count), plus
    ``loaded`` once filled from PostgreSQL. velocity: per method (METHODS order), a sorted set of the
    customer's attempt ids of that method scored by time (ms), whatever their currency (velocity counts
    attempts). history: per method, a hash n, sum, max of the customer's admitted amounts of that method in
    one currency (the attempt's: amounts of different currencies are not comparable), plus ``loaded``. A
    rule scoped to some methods reads only their logs and histories.
    day_preloaded / month_preloaded: sets of admission ids whose amounts a rebuild from PostgreSQL already
    put into day / month (their rows were committed, their own check had not run yet): their check must
    not add them a second time."""

    tag: str
    day: str
    month: str
    day_preloaded: str
    month_preloaded: str
    velocity: tuple[str, ...]
    history: tuple[str, ...]

    def velocity_of(self, method: str) -> str:
        return self.velocity[METHODS.index(method)]

    def history_of(self, method: str) -> str:
        return self.history[METHODS.index(method)]

    def all(self) -> tuple[str, ...]:
        """Every key of the subject for the day and the currency: what a Redis loss takes."""
        return (self.day, self.month, self.day_preloaded, self.month_preloaded, *self.velocity, *self.history)


def subject_tag(merchant_id: str, customer_id: str | None) -> str:
    return f"c:{merchant_id}:{customer_id}" if customer_id is not None else f"m:{merchant_id}"


def subject_keys(merchant_id: str, customer_id: str | None, day: date, currency: str) -> SubjectKeys:
    """The subject's keys an attempt of ``day`` in ``currency`` touches (only the histories are per currency)."""
    tag = f"{PREFIX}:{{{subject_tag(merchant_id, customer_id)}}}"
    return SubjectKeys(
        tag=tag,
        day=f"{tag}:d:{day:%Y%m%d}",
        month=f"{tag}:m:{day:%Y%m}",
        day_preloaded=f"{tag}:pd:{day:%Y%m%d}",
        month_preloaded=f"{tag}:pm:{day:%Y%m}",
        velocity=tuple(f"{tag}:v:{method}" for method in METHODS),
        history=tuple(f"{tag}:h:{currency}:{method}" for method in METHODS),
    )


def counter_field(currency: str, method: str, metric: str) -> str:
    """``metric`` a (amount) or n (count); ``method`` a method or * for all methods together."""
    return f"{currency}|{method}|{metric}"


def check_marker(k: SubjectKeys, attempt_id: str) -> str:
    """The outcome of an attempt's check on this subject, kept briefly: a client retry of the script (after
    a timeout, when the first run did happen) answers the same instead of counting twice."""
    return f"{k.tag}:c:{attempt_id}"


def release_marker(k: SubjectKeys, attempt_id: str) -> str:
    """Present once an attempt's usage was given back on this subject: a retried release gives back once."""
    return f"{k.tag}:r:{attempt_id}"


def all_keys_pattern() -> str:
    """Every controls key (operations and tests: SCAN for what a Redis loss would take)."""
    return f"{PREFIX}:*"
