"""The gateway's job handlers and background loops: the job worker and the janitor.

engine/bootstrap.py runs them in the API process (PAYENGINE_GATEWAY_IN_PROCESS=1, the default) or in a
``payengine gateway`` process of their own; then the API processes only answer notifies.
"""

from __future__ import annotations

from engine.background import BackgroundJob
from engine.gateway.channel_refunds import CHANNEL_REFUND_JOB, run_channel_refund_job
from engine.gateway.closing import run_close_job
from engine.gateway.context import Gateway
from engine.gateway.janitor import Janitor
from engine.gateway.outcomes import AUTO_REFUND_JOB
from engine.gateway.refunds import run_auto_refund_job
from engine.gateway.vouchers import CREATE_VOUCHER_JOB, run_voucher_job
from engine.gateway.worker import GatewayWorker, JobHandler
from engine.payments.closing import CLOSE_ORDER_JOB
from engine.settings import Settings

HANDLERS: dict[str, JobHandler] = {
    CREATE_VOUCHER_JOB: run_voucher_job,
    CLOSE_ORDER_JOB: run_close_job,
    AUTO_REFUND_JOB: run_auto_refund_job,
    CHANNEL_REFUND_JOB: run_channel_refund_job,
}


def build_gateway_worker(gw: Gateway, settings: Settings) -> GatewayWorker:
    # Synchronous voucher mode: requests run their own voucher jobs; the loop leaves those alone.
    kinds = tuple(k for k in HANDLERS if not (settings.voucher_sync and k == CREATE_VOUCHER_JOB))
    return GatewayWorker(gw, HANDLERS, settings.gateway_channel_concurrency * max(1, len(gw.channels)), kinds)


def gateway_loops(gw: Gateway, worker: GatewayWorker) -> list[BackgroundJob]:
    """None without a configured channel: nothing to ask."""
    if not gw.channels:
        return []
    return [("gateway-worker", worker.run()), ("gateway-janitor", Janitor(gw).run())]
