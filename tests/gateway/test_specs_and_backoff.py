"""Pure parts: the PAYENGINE_CHANNELS spec string, settings errors, and retry backoff bounds."""

from __future__ import annotations

import random

import pytest

from engine.channel_specs import ChannelSpec, parse_channel_specs
from engine.gateway.jobs import backoff_s
from engine.settings import Settings, SettingsError


def test_channel_specs_parse_names_kinds_and_optional_cost() -> None:
    specs = parse_channel_specs(" wx-a=wxsim,http://127.0.0.1:9101,m1,k1 ; bank=banksim,https://b.example,m2,k2,90 ;")
    assert specs == (ChannelSpec("wx-a", "wxsim", "http://127.0.0.1:9101", "m1", "k1"),
                     ChannelSpec("bank", "banksim", "https://b.example", "m2", "k2", 90))
    assert parse_channel_specs("") == ()
    assert "k1" not in repr(specs[0])  # keys stay out of logs


@pytest.mark.parametrize("raw", [
    "wx=wxsim,http://x,m",  # too few fields
    "wx=wxsim,ftp://x,m,k",  # not http
    "Wx=wxsim,http://x,m,k",  # bad name
    "wx=wxsim,http://x,m,k,lots",  # cost not a number
    "wx=wxsim,http://x,m,k;wx=banksim,http://y,m,k",  # duplicate name
    "wxsim,http://x,m,k",  # no name
])
def test_bad_channel_specs_are_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"PAYENGINE_CHANNELS": raw})
    assert caught.value.variable == "PAYENGINE_CHANNELS"


def test_query_schedule_parses_and_rejects_nonsense() -> None:
    assert Settings.from_env({"PAYENGINE_JANITOR_QUERY_SCHEDULE_S": "5, 10,60"}).janitor_query_schedule_s == (
        5.0, 10.0, 60.0)
    for raw in ("", "0", "-1", "x", "90000"):
        with pytest.raises(SettingsError):
            Settings.from_env({"PAYENGINE_JANITOR_QUERY_SCHEDULE_S": raw})


def test_backoff_doubles_within_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    for attempt, bound_ms in ((1, 100), (2, 200), (3, 400), (10, 1000)):
        waits = [backoff_s(attempt, 100, 1000, rng) for _ in range(200)]
        assert all(bound_ms / 2000 <= w <= bound_ms / 1000 for w in waits)
