"""`payengine gateway`: the voucher worker, janitor and payout worker as a process of their own."""

from __future__ import annotations

import logging

from engine.bootstrap import Role, run_role
from engine.db import ensure_servers
from engine.logs import configure_logging
from engine.settings import Settings

log = logging.getLogger(__name__)


def run_gateway(settings: Settings) -> int:
    """Run until SIGINT/SIGTERM; returns the exit code."""
    configure_logging(settings.log_level)
    if not settings.channels:
        log.error("no channels configured: set PAYENGINE_CHANNELS")
        return 2
    urls = ensure_servers(settings)
    return run_role(settings.replace(gateway_in_process=True, voucher_sync=False), urls.database_url, urls.redis_url,
                    Role.GATEWAY, f"payengine gateway running for channels {[c.name for c in settings.channels]}")
