"""The payout windows are checked at start: a send may only count as "never arrived" once no copy can still be
in flight (safe delay > channel call timeout), and a payout may only fail after the safe delay (give-up > it)."""

from __future__ import annotations

import pytest

from engine.settings import Settings, SettingsError


@pytest.mark.parametrize(("env", "variable"), [
    ({"PAYENGINE_PAYOUT_NOT_FOUND_SAFE_S": "0"}, "PAYENGINE_PAYOUT_NOT_FOUND_SAFE_S"),
    ({"PAYENGINE_PAYOUT_GIVE_UP_S": "0"}, "PAYENGINE_PAYOUT_GIVE_UP_S"),
    ({"PAYENGINE_PAYOUT_NOT_FOUND_SAFE_S": "3", "PAYENGINE_GATEWAY_CALL_TIMEOUT_MS": "3000"},
     "PAYENGINE_PAYOUT_NOT_FOUND_SAFE_S"),
    ({"PAYENGINE_PAYOUT_NOT_FOUND_SAFE_S": "60", "PAYENGINE_PAYOUT_GIVE_UP_S": "60"}, "PAYENGINE_PAYOUT_GIVE_UP_S"),
    ({"PAYENGINE_PAYOUT_NOT_FOUND_SAFE_S": "1000"}, "PAYENGINE_PAYOUT_GIVE_UP_S"),  # the default give-up is 900
])
def test_payout_windows_that_could_unfreeze_too_early_are_refused_at_start(env: dict[str, str],
                                                                           variable: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert refused.value.variable == variable


def test_safe_delay_over_the_call_timeout_and_give_up_over_the_safe_delay_are_accepted() -> None:
    settings = Settings.from_env({"PAYENGINE_PAYOUT_NOT_FOUND_SAFE_S": "4", "PAYENGINE_GATEWAY_CALL_TIMEOUT_MS": "3000",
                                  "PAYENGINE_PAYOUT_GIVE_UP_S": "5"})
    assert (settings.payout_not_found_safe_s, settings.payout_give_up_s) == (4, 5)
    with pytest.raises(SettingsError, match="PAYENGINE_GATEWAY_CALL_TIMEOUT_MS"):
        settings.replace(gateway_call_timeout_ms=4000).check()
