"""Settings come from PAYENGINE_* variables; a bad one is named in the error."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.settings import Settings, SettingsError


def test_defaults_without_environment() -> None:
    s = Settings.from_env({})
    assert (s.host, s.port, s.workers, s.data_dir) == ("127.0.0.1", 8080, 1, Path(".payengine"))
    assert s.database_url == "" and s.redis_url == ""


def test_values_are_parsed() -> None:
    s = Settings.from_env({"PAYENGINE_PORT": "9000", "PAYENGINE_DATABASE_URL": "postgresql://u@h/db",
                           "PAYENGINE_REDIS_URL": "redis://localhost:6379/0", "PAYENGINE_WORKERS": "2"})
    assert (s.port, s.workers, s.database_url) == (9000, 2, "postgresql://u@h/db")


@pytest.mark.parametrize(("name", "value"), [
    ("PAYENGINE_PORT", "eighty"),
    ("PAYENGINE_PORT", "70000"),
    ("PAYENGINE_DATABASE_URL", "mysql://x"),
    ("PAYENGINE_REDIS_URL", "http://x"),
    ("PAYENGINE_ADMIN_TOKEN", " "),
    ("PAYENGINE_WORKERS", "0"),
    ("PAYENGINE_BATCH_MAX", "-1"),
    ("PAYENGINE_BATCH_LINGER_US", "1001"),
    ("PAYENGINE_BATCH_QUEUE_MAX", "0"),
])
def test_bad_variable_is_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: value})
    assert info.value.variable == name
    assert name in str(info.value)


def test_settings_are_frozen() -> None:
    s = Settings.from_env({})
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]


def test_batching_is_off_by_default_and_its_queue_must_hold_a_full_batch() -> None:
    s = Settings.from_env({})
    assert (s.batch_max, s.batch_linger_us, s.batch_queue_max) == (0, 0, 4096)
    on = Settings.from_env({"PAYENGINE_BATCH_MAX": "256"})
    assert on.batch_max == 256
    lingering = Settings.from_env({"PAYENGINE_BATCH_MAX": "64", "PAYENGINE_BATCH_LINGER_US": "500"})
    assert (lingering.batch_max, lingering.batch_linger_us) == (64, 500)
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"PAYENGINE_BATCH_MAX": "100", "PAYENGINE_BATCH_QUEUE_MAX": "99"})
    assert info.value.variable == "PAYENGINE_BATCH_QUEUE_MAX"
