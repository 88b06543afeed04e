"""The Grafana dashboard: built from ops/grafana/build_dashboard.py, Grafana 10+ schema, every query through the
`datasource` variable (no datasource uid written in), and a description on every panel."""

from __future__ import annotations

import subprocess
import sys

from tests.ops import promql

BUILDER = promql.ROOT / "ops" / "grafana" / "build_dashboard.py"


def test_dashboard_json_is_what_the_builder_makes() -> None:
    done = subprocess.run([sys.executable, str(BUILDER), "--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_dashboard_is_grafana_10_with_a_datasource_variable() -> None:
    board = promql.dashboard()
    assert board["schemaVersion"] >= 38  # Grafana 10.0
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["account"]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_every_panel_and_query_uses_the_datasource_variable() -> None:
    for panel in promql.panels():
        assert panel.raw["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel.title
        assert panel.raw["targets"], panel.title
        for target in panel.raw["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel.title


def test_every_panel_says_what_healthy_looks_like() -> None:
    for panel in promql.panels():
        assert "Healthy" in panel.raw.get("description", ""), panel.title


def test_dashboard_has_the_rows_an_sre_looks_for() -> None:
    rows = [p["title"] for p in promql.dashboard()["panels"] if p["type"] == "row"]
    for wanted in ("Traffic", "Money path", "Hot-account buffer", "Channels and gateway", "Webhooks",
                   "Limits and risk", "Day-end"):
        assert any(r.startswith(wanted) for r in rows), wanted
    ids = [p["id"] for p in promql.dashboard()["panels"]]
    assert len(ids) == len(set(ids))
