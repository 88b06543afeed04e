"""The hot-account buffer: Redis-backed, flushed to PostgreSQL in ordered batches.

Public pieces:
- ``buffer.sink.RedisHotLegSink`` - engine.booking.HotLegSink: reserve hot debits before commit,
  enqueue hot legs after commit (``Booker(pool, sink)``).
- ``buffer.runner.FlushRunner`` / ``buffer.flush_main`` - flusher workers (advisory-lock ownership,
  recovery sweep); ``python -m buffer.flush_main`` or ``payengine flush`` as a process.
- ``buffer.flusher.flush_account``, ``buffer.recovery.recover_account`` - one flush / one sweep
  (``flush_accounts`` / ``recover_accounts``: many accounts in a fixed number of round trips).
- ``buffer.store.hot_balance(s)`` - applied / pending / projected for reads.
- ``buffer.state.read_status`` - depth, oldest age, applied/s, last batch per account.
- ``buffer.tuning`` - live settings (table buffer_settings), ``buffer.errors``, ``buffer.metrics``.
- ``buffer.logs`` - the JSON log line of every payengine process (engine/logs.py sets it up for its roles).
"""
