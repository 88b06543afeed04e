"""`payengine webhooks`: outbox delivery as a process of its own (then the API runs with
PAYENGINE_WEBHOOKS_IN_PROCESS=0)."""

from __future__ import annotations

from engine.bootstrap import Role, run_role
from engine.db import ensure_servers
from engine.logs import configure_logging
from engine.settings import Settings


def run_webhooks(settings: Settings) -> int:
    """Deliver until SIGINT/SIGTERM; returns the exit code."""
    configure_logging(settings.log_level)
    urls = ensure_servers(settings)
    return run_role(settings.replace(webhooks_in_process=True), urls.database_url, urls.redis_url, Role.WEBHOOKS,
                    "payengine webhooks delivering")
