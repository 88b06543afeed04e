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
