"""Risk rules as data and their evaluation. Pure: facts in, decisions out.

A rule has a kind (velocity, amount_anomaly, blocklist), an action taken when it fires (review or
deny) and kind-specific params. Every rule that applies to an attempt yields one decision (allow when
it does not fire), and all of them are recorded with the movement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from engine.controls.errors import InvalidControl
from engine.controls.limits import METHODS

KINDS = ("velocity", "amount_anomaly", "blocklist")
ACTIONS = ("review", "deny")
LISTS = ("customer", "instrument")
BASES = ("average", "max")
VELOCITY_WINDOW_MAX_S = 86_400
VELOCITY_ATTEMPTS_MAX = 1_000_000
FACTOR_MAX = 1_000.0
NAME_LENGTH_MAX = 200


@dataclass(frozen=True, slots=True)
class RiskRule:
    id: str
    name: str
    kind: str
    action: str
    params: Mapping[str, object]
    merchant_id: str | None = None
    methods: tuple[str, ...] = ()  # empty: every method
    enabled: bool = True

    def applies(self, merchant_id: str, method: str) -> bool:
        return self.enabled and (self.merchant_id is None or self.merchant_id == merchant_id) \
            and (not self.methods or method in self.methods)


@dataclass(frozen=True, slots=True)
class RuleDecision:
    rule_id: str
    kind: str
    decision: str  # allow | review | deny
    reason: str

    def to_json(self) -> dict[str, object]:
        return {"rule": self.rule_id, "kind": self.kind, "decision": self.decision, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class History:
    """The customer's admitted amounts so far (before this attempt), all in one currency."""

    count: int
    total: int
    largest: int


def _int_param(params: Mapping[str, object], name: str, low: int, high: int) -> int:
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidControl(f"params.{name}", f"params.{name} must be an integer between {low} and {high}")
    return value


def validate_definition(kind: str, action: str, params: Mapping[str, object], methods: Iterable[str],
                        name: str) -> dict[str, object]:
    """The params normalised for storage, or InvalidControl naming what is wrong."""
    if not 1 <= len(name) <= NAME_LENGTH_MAX:
        raise InvalidControl("name", f"name must be 1-{NAME_LENGTH_MAX} characters")
    if kind not in KINDS:
        raise InvalidControl("kind", f"kind must be one of {list(KINDS)}, not {kind!r}")
    if action not in ACTIONS:
        raise InvalidControl("action", f"action must be one of {list(ACTIONS)}, not {action!r}")
    for method in methods:
        if method not in METHODS:
            raise InvalidControl("methods", f"methods may hold only {list(METHODS)}, not {method!r}")
    allowed = {"velocity": {"window_s", "max_attempts"}, "amount_anomaly": {"factor", "basis", "min_history"},
               "blocklist": {"list"}}[kind]
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InvalidControl(f"params.{unknown[0]}", f"unknown param {unknown[0]!r} for a {kind} rule; "
                                                      f"expected {sorted(allowed)}")
    if kind == "velocity":
        return {"window_s": _int_param(params, "window_s", 1, VELOCITY_WINDOW_MAX_S),
                "max_attempts": _int_param(params, "max_attempts", 1, VELOCITY_ATTEMPTS_MAX)}
    if kind == "amount_anomaly":
        factor = params.get("factor")
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not 1.0 <= factor <= FACTOR_MAX:
            raise InvalidControl("params.factor", f"params.factor must be a number between 1 and {FACTOR_MAX}")
        basis = params.get("basis", "average")
        if basis not in BASES:
            raise InvalidControl("params.basis", f"params.basis must be one of {list(BASES)}")
        return {"factor": float(factor), "basis": basis,
                "min_history": _int_param(params, "min_history", 1, 100_000)}
    if params.get("list") not in LISTS:
        raise InvalidControl("params.list", f"params.list must be one of {list(LISTS)}")
    return {"list": params["list"]}


VelocityWindow = tuple[int, tuple[str, ...]]  # (window ms, the methods whose attempts a velocity rule counts)


def counted_methods(rule: RiskRule) -> tuple[str, ...]:
    """The methods whose attempts (velocity) or amounts (amount anomaly) the rule looks at: its own methods,
    or every method when it names none (METHODS order)."""
    return tuple(m for m in METHODS if not rule.methods or m in rule.methods)


def _window_ms(rule: RiskRule) -> int:
    return int(str(rule.params["window_s"])) * 1000


def velocity_windows(rules: Iterable[RiskRule]) -> list[VelocityWindow]:
    """The distinct (window, methods) the counters must report for the velocity rules among ``rules``."""
    return sorted({(_window_ms(r), counted_methods(r)) for r in rules if r.kind == "velocity"})


def velocity_keep_ms(rules: Iterable[RiskRule], method: str) -> int:
    """How long ``method``'s velocity log must keep an attempt: the longest window of the velocity rules
    among ``rules`` (all of a merchant's, any method) that count that method; 0 when none does (its attempts
    are not logged). Every rule that reads a log is among those setting its trim, so trimming never drops
    an entry some rule's window still needs."""
    return max((_window_ms(r) for r in rules if r.kind == "velocity" and method in counted_methods(r)),
               default=0)


def velocity_attempts_max(rules: Iterable[RiskRule], cap: int) -> int:
    """The largest N of the velocity rules (N attempts in T seconds), at most ``cap``: a velocity log rebuilt
    from the latest N admissions of each method decides every rule as the whole log would (a rule with N
    past the cap counts at most ``cap`` of each method's attempts made before a rebuild)."""
    return min(cap, max((int(str(r.params["max_attempts"])) for r in rules if r.kind == "velocity"), default=0))


def combined_history(histories: Mapping[str, History], methods: Iterable[str]) -> History:
    """The history of ``methods`` together, from the per-method histories."""
    parts = [histories[m] for m in methods if m in histories]
    return History(sum(h.count for h in parts), sum(h.total for h in parts), max((h.largest for h in parts),
                                                                                 default=0))


def blocklist_decisions(rules: Iterable[RiskRule], listed: Mapping[str, bool]) -> list[RuleDecision]:
    """``listed``: list name -> whether the attempt's customer/instrument is on it."""
    out = []
    for rule in rules:
        if rule.kind == "blocklist":
            hit = listed.get(str(rule.params["list"]), False)
            out.append(RuleDecision(rule.id, rule.kind, rule.action if hit else "allow",
                                    f"{rule.params['list']} is blocklisted" if hit else "not listed"))
    return out


def counted_decisions(rules: Iterable[RiskRule], amount: int, currency: str,
                      history: Mapping[str, History] | None,
                      velocity: Mapping[VelocityWindow, int]) -> list[RuleDecision]:
    """Velocity and amount-anomaly decisions from the counters' facts (None/empty: no customer). ``history``
    per method, of ``currency`` only (the attempt's: minor units of two currencies do not compare); velocity
    counts attempts of every currency. Each rule counts only the attempts and amounts of its own methods
    (``counted_methods``)."""
    out = []
    for rule in rules:
        if rule.kind == "velocity":
            window_ms = _window_ms(rule)
            limit = int(str(rule.params["max_attempts"]))
            seen = velocity.get((window_ms, counted_methods(rule)))
            if seen is None:
                continue
            hit = seen > limit
            out.append(RuleDecision(rule.id, rule.kind, rule.action if hit else "allow",
                                    f"{seen} attempts in {window_ms // 1000}s (max {limit})"))
        elif rule.kind == "amount_anomaly" and history is not None:
            out.append(_anomaly(rule, amount, currency, combined_history(history, counted_methods(rule))))
    return out


def _anomaly(rule: RiskRule, amount: int, currency: str, history: History) -> RuleDecision:
    min_history = int(str(rule.params["min_history"]))
    if history.count < min_history:
        return RuleDecision(rule.id, rule.kind, "allow", f"{currency} history of {history.count} < {min_history}")
    factor = float(str(rule.params["factor"]))
    basis = history.largest if rule.params["basis"] == "max" else history.total / history.count
    hit = amount > factor * basis
    return RuleDecision(rule.id, rule.kind, rule.action if hit else "allow",
                        f"amount {amount} {currency} vs {factor:g} x {rule.params['basis']} {basis:.0f} {currency}")


def worst(decisions: Iterable[RuleDecision]) -> RuleDecision | None:
    """The first deny, else the first review, else None."""
    found: RuleDecision | None = None
    for d in decisions:
        if d.decision == "deny":
            return d
        if d.decision == "review" and found is None:
            found = d
    return found
