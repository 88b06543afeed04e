"""Major-unit strings ↔ minor units, exactly, for the bank channel."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.amounts import AmountFormatError, major_to_minor, minor_to_major


@given(st.integers(min_value=0, max_value=10**15))
def test_minor_to_major_to_minor_round_trips(amount_minor: int) -> None:
    assert major_to_minor(minor_to_major(amount_minor)) == amount_minor


@given(st.integers(min_value=0, max_value=10**13), st.integers(min_value=0, max_value=99))
def test_major_text_parses_to_the_same_minor_as_integer_arithmetic(major: int, cents: int) -> None:
    assert major_to_minor(f"{major}.{cents:02d}") == major * 100 + cents


@pytest.mark.parametrize(
    ("text", "amount_minor"),
    [
        ("0", 0),
        ("0.00", 0),
        ("0.01", 1),
        ("0.1", 10),
        ("0.29", 29),
        ("19.99", 1999),
        ("19", 1900),
        ("1.10", 110),
        ("100000.00", 10_000_000),
    ],
)
def test_major_text_is_read_exactly(text: str, amount_minor: int) -> None:
    assert major_to_minor(text) == amount_minor


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-1.00",
        "+1.00",
        "1.999",
        "1.",
        ".5",
        "1e3",
        "NaN",
        "inf",
        " 1.00",
        "1.00 ",
        "1,00",
        "01.00",
        "１.00",
        "0x10",
        "1_000.00",
        "9" * 16,
    ],
)
def test_anything_but_a_plain_two_decimal_amount_is_refused(text: str) -> None:
    with pytest.raises(AmountFormatError):
        major_to_minor(text)


@pytest.mark.parametrize(("amount_minor", "text"), [(0, "0.00"), (1, "0.01"), (10, "0.10"), (1999, "19.99")])
def test_minor_formats_with_two_decimals(amount_minor: int, text: str) -> None:
    assert minor_to_major(amount_minor) == text


def test_negative_minor_is_refused() -> None:
    with pytest.raises(ValueError):
        minor_to_major(-1)
