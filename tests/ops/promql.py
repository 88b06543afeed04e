"""The ops kit as data: the rules of ops/prometheus/alerts.yml, the dashboard's queries, the metric names both use.

Read by the tests of tests/ops; nothing here talks to a server.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "ops" / "prometheus"
RULES = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
DASHBOARD = ROOT / "ops" / "grafana" / "payengine.json"
RUNBOOK = ROOT / "docs" / "RUNBOOK.md"
OPS_README = ROOT / "ops" / "README.md"

# What a Grafana variable stands for when a query is sent to Prometheus directly.
GRAFANA_VARIABLES = {"$__rate_interval": "30s", "$account": ".*"}
# Series Prometheus makes itself, not the engine.
PROMETHEUS_OWN = frozenset({"up"})

_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                       "offset", "bool", "inf", "nan"})


@dataclass(frozen=True)
class Query:
    where: str  # "rule NAME" or "panel TITLE (row ROW)"
    expr: str


@dataclass(frozen=True)
class Panel:
    row: str
    title: str
    raw: dict[str, Any]

    @property
    def queries(self) -> list[Query]:
        return [Query(f"panel {self.title!r}", to_promql(t["expr"])) for t in self.raw.get("targets", [])]


def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return groups


def rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def rule_queries() -> list[Query]:
    return [Query(f"rule {rule.get('alert') or rule['record']}", rule["expr"]) for rule in rules()]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[Panel]:
    found: list[Panel] = []
    row = ""
    for raw in dashboard()["panels"]:
        if raw["type"] == "row":
            row = raw["title"]
            continue
        found.append(Panel(row, raw["title"], raw))
    return found


def to_promql(grafana_expr: str) -> str:
    """A dashboard query as Prometheus takes it: Grafana's variables replaced by what they stand for."""
    expr = grafana_expr
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {grafana_expr}"
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric (and recorded series) names an expression reads. Not a parser: string literals, label
    matchers, ranges and grouping clauses are cut out, then every identifier not called as a function and not a
    keyword is a name. Prometheus itself rejects what this misreads (the integration test sends every query)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\boffset\s+\w+", "", text)
    names: set[str] = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = match.group(0)
        following = text[match.end():].lstrip()
        if following.startswith("(") or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def engine_metric_names() -> set[str]:
    """Every metric name the rules and the dashboard read that the engine must export (recorded series and
    Prometheus' own left out)."""
    names: set[str] = set()
    for query in rule_queries() + [q for panel in panels() for q in panel.queries]:
        names |= metric_names(query.expr)
    return names - recorded_names() - PROMETHEUS_OWN


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    anchor = heading.strip().lower()
    anchor = re.sub(r"[^\w\- ]", "", anchor)
    return anchor.replace(" ", "-")


def runbook_anchors() -> set[str]:
    return {github_anchor(line.lstrip("#")) for line in RUNBOOK.read_text().splitlines() if line.startswith("## ")}


def with_short_for(seconds: int) -> dict[str, Any]:
    """The rule file with every ``for`` cut to at most ``seconds`` and every group evaluated each second: the same
    expressions and thresholds, fast enough for a test to watch an alert fire."""
    groups = rule_groups()
    for group in groups:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule and _seconds(rule["for"]) > seconds:
                rule["for"] = f"{seconds}s"
    return {"groups": groups}


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", duration))
