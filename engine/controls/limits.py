"""Limit rules (额度) as values: which rules bind an attempt, and the single-transaction check.

Pure: no I/O. A rule is identified by (scope, window, method, currency); a merchant's rule with the
same identity replaces the global default, so a merchant can raise, lower or lift (both maxima None)
one limit and keep the other defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from engine.controls.errors import InvalidControl, LimitExceeded

SCOPES = ("customer", "merchant")
WINDOWS = ("single", "daily", "monthly")
METHODS = ("wallet", "channel", "transfer", "payout")
ANY = "*"
AMOUNT_MAX_LIMIT = 2**50  # far above any real limit; sums stay exact in Lua (doubles) and bigint
RULES_PER_SET_MAX = 200


@dataclass(frozen=True, slots=True)
class LimitRule:
    scope: str          # customer | merchant
    window: str         # single | daily | monthly
    method: str = ANY   # one of METHODS, or * for all methods together
    currency: str = ANY  # ISO 4217 code, or * for each currency (amounts are counted per currency)
    amount_max: int | None = None
    count_max: int | None = None

    @property
    def identity(self) -> tuple[str, str, str, str]:
        return (self.scope, self.window, self.method, self.currency)

    def binds(self, method: str, currency: str, has_customer: bool) -> bool:
        """Whether this rule limits an attempt of ``method`` in ``currency``."""
        if self.scope == "customer" and not has_customer:
            return False
        return self.method in (ANY, method) and self.currency in (ANY, currency) \
            and (self.amount_max is not None or self.count_max is not None)


def validate_rule(rule: LimitRule, index: int) -> LimitRule:
    """The rule as given, or InvalidControl naming the field (``limits[i].field``)."""
    where = f"limits[{index}]"
    if rule.scope not in SCOPES:
        raise InvalidControl(f"{where}.scope", f"{where}.scope must be one of {list(SCOPES)}, not {rule.scope!r}")
    if rule.window not in WINDOWS:
        raise InvalidControl(f"{where}.window", f"{where}.window must be one of {list(WINDOWS)}, not {rule.window!r}")
    if rule.method != ANY and rule.method not in METHODS:
        raise InvalidControl(f"{where}.method",
                             f"{where}.method must be '*' or one of {list(METHODS)}, not {rule.method!r}")
    if rule.currency != ANY and (len(rule.currency) != 3 or not rule.currency.isalpha()
                                 or not rule.currency.isupper()):
        raise InvalidControl(f"{where}.currency", f"{where}.currency must be '*' or an ISO 4217 code like 'CNY'")
    for name, value in (("amount_max", rule.amount_max), ("count_max", rule.count_max)):
        if value is not None and not 0 <= value <= AMOUNT_MAX_LIMIT:
            raise InvalidControl(f"{where}.{name}", f"{where}.{name} must be between 0 and {AMOUNT_MAX_LIMIT}, "
                                                    f"not {value}")
    if rule.window == "single" and rule.count_max is not None:
        raise InvalidControl(f"{where}.count_max", f"{where}: a single-transaction limit has no count_max")
    return rule


def validate_rules(rules: Sequence[LimitRule]) -> list[LimitRule]:
    """A whole set as PUT replaces it: every rule valid and no identity twice."""
    if len(rules) > RULES_PER_SET_MAX:
        raise InvalidControl("limits", f"at most {RULES_PER_SET_MAX} limits per set")
    seen: set[tuple[str, str, str, str]] = set()
    for i, rule in enumerate(rules):
        validate_rule(rule, i)
        if rule.identity in seen:
            raise InvalidControl(f"limits[{i}]", f"limits[{i}] repeats scope/window/method/currency {rule.identity}")
        seen.add(rule.identity)
    return list(rules)


def effective_rules(global_rules: Iterable[LimitRule], merchant_rules: Iterable[LimitRule]) -> list[LimitRule]:
    """Global defaults with the merchant's overrides applied (same identity replaces)."""
    merged = {r.identity: r for r in global_rules}
    merged.update({r.identity: r for r in merchant_rules})
    return list(merged.values())


@dataclass(frozen=True, slots=True)
class LimitSets:
    """Every configured rule: the global defaults and the overrides per merchant."""

    global_rules: tuple[LimitRule, ...] = ()
    by_merchant: Mapping[str, tuple[LimitRule, ...]] = field(default_factory=dict)

    def for_attempt(self, merchant_id: str, method: str, currency: str, has_customer: bool) -> list[LimitRule]:
        overrides = self.by_merchant.get(merchant_id, ())
        return [r for r in effective_rules(self.global_rules, overrides) if r.binds(method, currency, has_customer)]


def check_single(rules: Iterable[LimitRule], amount: int, method: str, currency: str) -> None:
    """Single-transaction limits need no counter: LimitExceeded when ``amount`` is above one."""
    for rule in rules:
        if rule.window == "single" and rule.amount_max is not None and amount > rule.amount_max:
            raise LimitExceeded(scope=rule.scope, window="single", metric="amount", method=rule.method,
                                currency=currency, limit=rule.amount_max, used=0, attempted=amount)
