"""One module per channel; each exposes `ADAPTER`, a class built as `ADAPTER(session, config)`."""
