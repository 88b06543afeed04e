"""The log line every payengine process writes (buffer/logs.py): the flusher's is the API's."""

from __future__ import annotations

import io
import json
import logging
import warnings

from buffer import logs as buffer_logs
from buffer.logs import RepeatFilter, configure_json_logging
from engine import logs as engine_logs


def _warning(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("buffer.recovery", logging.WARNING, __file__, 1, msg, None, None)
    record.__dict__.update(extra)
    return record


def test_engine_roles_and_the_flusher_share_one_formatter_and_repeat_policy() -> None:
    assert engine_logs.JsonFormatter is buffer_logs.JsonFormatter
    assert engine_logs.RepeatFilter is buffer_logs.RepeatFilter


def test_one_event_on_several_accounts_is_logged_for_each_account() -> None:
    now = [0.0]
    repeat = RepeatFilter(interval_s=10, clock=lambda: now[0])
    assert all(repeat.filter(_warning("recovery re-enqueued legs", account_id=a, legs=1)) for a in ("a", "b", "c"))
    assert not repeat.filter(_warning("recovery re-enqueued legs", account_id="a", legs=2))  # a repeat on one
    now[0] = 10.5
    again = _warning("recovery re-enqueued legs", account_id="a", legs=3)
    assert repeat.filter(again) and again.repeated == 1  # type: ignore[attr-defined]


def test_configured_process_writes_records_and_warnings_as_json_lines_with_their_fields() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    try:
        configure_json_logging("DEBUG", stream=out)
        logging.getLogger("buffer.flusher").debug("batch applied", extra={"account_id": "acct_x", "legs": 7})
        warnings.warn("a library complains", RuntimeWarning, stacklevel=1)
    finally:
        logging.captureWarnings(False)
        root.handlers[:] = handlers
        root.setLevel(level)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0] | {"ts": None} == {"ts": None, "level": "debug", "logger": "buffer.flusher",
                                       "msg": "batch applied", "account_id": "acct_x", "legs": 7}
    assert lines[1]["logger"] == "py.warnings" and "a library complains" in lines[1]["msg"]
