"""How every payengine process writes its log: one JSON object per line on stderr, repeats held back.

Defined here, in the innermost package that runs a process of its own (``python -m buffer.flush_main``,
which may not import engine/), so that the flusher and every engine role (engine/logs.py) write the
same line with the same fields: ``ts``, ``level``, ``logger``, ``msg``, whatever the call passed in
``extra`` (``account_id``, ``legs``, ...), ``exc`` for a traceback, ``repeated`` after held-back repeats.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
# Never write these, whatever a caller passes in ``extra``.
_SECRET_KEYS = {"secret", "api_key", "password", "signature", "authorization", "token", "key"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                event[key] = "[redacted]" if key.lower() in _SECRET_KEYS else value
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(event, default=str).decode()


class RepeatFilter(logging.Filter):
    """Warnings and errors that repeat (same logger, message, exception type and ``account_id``) pass once per
    interval; the next one to pass says how many were held back (``repeated``). An outage that fails every
    request then logs a line every ``interval_s``, not a traceback per request, while one event on several
    accounts (legs recovered on each, a flush failing on one) still names every account. Bounded: at most
    ``keys_max`` kinds (accounts in events are the hot accounts, a few dozen)."""

    def __init__(self, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic,
                 keys_max: int = 1000) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.clock = clock
        self.keys_max = keys_max
        self._seen: dict[tuple[str, object, object, object], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.msg, record.exc_info[0] if record.exc_info else None,
               getattr(record, "account_id", None))
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.interval_s:
            seen[1] += 1
            return False
        if seen is not None and seen[1]:
            record.repeated = int(seen[1])
        if seen is None and len(self._seen) >= self.keys_max:
            self._seen.clear()  # bounded; forgetting only lets one more line through
        self._seen[key] = [now, 0]
        return True


def configure_json_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every log record of this process, ``warnings.warn`` included, to ``stream`` (stderr) as JSON
    lines, repeats held back, from ``level`` up. For process entry points only (engine/logs.py, flush_main)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)
