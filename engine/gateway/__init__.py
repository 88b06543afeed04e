"""The channel front gateway: voucher worker, notify handling, janitor, exception records.

Kept import-light on purpose: `engine.settings` imports `engine.gateway.specs`, so nothing here may
pull in aiohttp apps or the database at import time. `engine.gateway.wiring` plugs it into the app.
"""
