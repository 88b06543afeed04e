"""The alert rules: promtool accepts them and their unit tests pass; every alert is tested firing and quiet, says
what it means and links its own runbook section; the thresholds table of ops/README.md lists every alert."""

from __future__ import annotations

import subprocess
from collections import defaultdict

import yaml

from tests.ops import promql
from tests.ops.conftest import tool

RUNBOOK_BASE = "https://github.com/your-org/payengine/blob/main/docs/RUNBOOK.md#"


def _promtool(*args: str) -> str:
    done = subprocess.run([tool("promtool"), *args], capture_output=True, text=True, timeout=120,
                          cwd=promql.PROMETHEUS_DIR)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_promtool_checks_the_rules_and_the_compose_config() -> None:
    assert "SUCCESS" in _promtool("check", "rules", str(promql.RULES))
    # prometheus.yml (docker-compose's) loads alerts.yml: checking it checks the pair.
    assert "SUCCESS" in _promtool("check", "config", str(promql.PROMETHEUS_DIR / "prometheus.yml"))


def test_promtool_unit_tests_pass() -> None:
    output = _promtool("test", "rules", *(str(p) for p in promql.RULE_TESTS))
    assert "FAILED" not in output


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    cases: dict[str, set[str]] = defaultdict(set)
    for path in promql.RULE_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for check in test.get("alert_rule_test", []):
                cases[check["alertname"]].add("firing" if check.get("exp_alerts") else "quiet")
    names = {a["alert"] for a in promql.alerts()}
    missing = {name: {"firing", "quiet"} - cases.get(name, set()) for name in names}
    assert {name: kinds for name, kinds in missing.items() if kinds} == {}
    assert set(cases) <= names, f"tests of alerts that do not exist: {set(cases) - names}"


def test_every_alert_explains_itself_and_links_its_runbook_section() -> None:
    anchors = promql.runbook_anchors()
    for alert in promql.alerts():
        name = alert["alert"]
        annotations = alert.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), name
        assert alert.get("labels", {}).get("severity") in ("warning", "critical"), name
        url = annotations.get("runbook_url", "")
        assert url == RUNBOOK_BASE + promql.github_anchor(name), f"{name}: runbook_url {url}"
        assert promql.github_anchor(name) in anchors, f"docs/RUNBOOK.md has no section for {name}"


def test_readme_thresholds_table_lists_every_alert() -> None:
    readme = promql.OPS_README.read_text()
    missing = [a["alert"] for a in promql.alerts() if f"| `{a['alert']}` |" not in readme]
    assert missing == [], "ops/README.md's table lacks these alerts"
