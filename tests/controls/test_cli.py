"""``payengine limits``: set, show, bad input refused with nothing stored, usage from the record."""

from __future__ import annotations

import json

import pytest

from engine.cli.main import main
from tests.conftest import Servers
from tests.factories import rand_id


def test_limits_cli_sets_shows_and_refuses_bad_sets(servers: Servers, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PAYENGINE_DATABASE_URL", servers.database_url)
    monkeypatch.setenv("PAYENGINE_REDIS_URL", servers.redis_url)
    merchant = rand_id("mch")
    limits = [{"scope": "customer", "window": "daily", "method": "wallet", "amount_max": 50_000}]
    assert main(["limits", "set", "--merchant", merchant, json.dumps(limits)]) == 0
    capsys.readouterr()
    bad = [{"scope": "customer", "window": "fortnightly", "amount_max": 1}]
    assert main(["limits", "set", "--merchant", merchant, json.dumps(bad)]) == 2
    assert "limits[0].window" in capsys.readouterr().err
    assert main(["limits", "show", "--merchant", merchant]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["limits"] == [{**limits[0], "currency": "*", "count_max": None}]
    assert main(["limits", "usage", "--merchant", merchant]) == 0
    assert json.loads(capsys.readouterr().out)["day"] == {}
