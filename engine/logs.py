"""Structured logging: one JSON line per event. Only engine/ configures logging for its roles.

The line itself (``JsonFormatter``, ``RepeatFilter``) is buffer/logs.py's, so that the flusher process
(``python -m buffer.flush_main``, which may not import engine/) writes exactly what the API writes.
"""

from __future__ import annotations

import logging

from buffer.logs import JsonFormatter, RepeatFilter, configure_json_logging

__all__ = ["JsonFormatter", "RepeatFilter", "configure_logging"]


def configure_logging(level: str = "INFO") -> None:
    configure_json_logging(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
