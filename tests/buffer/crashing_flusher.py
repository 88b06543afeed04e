"""A flusher process that dies at the worst moment: ``python -m tests.buffer.crashing_flusher`` takes
``python -m buffer.flush_main``'s arguments and SIGKILLs itself right after its first batch commits in
PostgreSQL, before the Redis ack (see buffer/flusher.py for why nothing is lost or booked twice).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping

from buffer.flush_main import main
from buffer.store import BatchResult


def die_after_commit(committed: Mapping[str, BatchResult]) -> None:
    """The flushers' ``after_commit`` hook: the process ends here, its batch committed and never acked."""
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:], after_commit=die_after_commit))
