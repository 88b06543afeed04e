"""Reading one statement line at a time, collecting unreadable lines instead of stopping.

A statement with one bad line still has thousands of good ones; reconciliation wants both,
the bad ones with the line number an operator can open the file at.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from channels.protocol import MalformedLine, StatementLine


class LineError(ValueError):
    """A line-level parse failure; the message becomes `MalformedLine.reason`."""


def csv_fields(text: str) -> list[str]:
    # One physical line at a time keeps line numbers exact; neither channel quotes newlines.
    return next(csv.reader([text]))


def parse_minor(text: str) -> int:
    """A non-negative integer amount in minor units, digits only."""
    if not text.isascii() or not text.isdigit():
        raise LineError(f"amount {text!r} is not a non-negative integer")
    return int(text)


def parse_time(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError as error:
        raise LineError(f"time {text!r}: {error}") from error


def collect(
    numbered: Iterator[tuple[int, str]], parse: Callable[[list[str]], StatementLine]
) -> tuple[list[StatementLine], list[MalformedLine]]:
    lines: list[StatementLine] = []
    malformed: list[MalformedLine] = []
    for line_no, text in numbered:
        try:
            lines.append(parse(csv_fields(text)))
        except (LineError, csv.Error) as error:
            malformed.append(MalformedLine(line_no, text, str(error)))
    return lines, malformed
