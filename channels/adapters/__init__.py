"""One subpackage per channel, named for it; each exposes `ADAPTER`, a class built as `ADAPTER(session, config)`.

Inside a channel's package: `payments.py` the adapter itself, `payouts.py` its payout wire, `statement.py`
its statement parser. `transport.py` and `statement_lines.py` here are shared by every channel.
"""
