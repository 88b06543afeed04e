"""The channel front gateway: voucher worker, notify handling, janitor, exception records.

How it runs:
- Channels come from `PAYENGINE_CHANNELS` (format: `engine/channel_specs.py`), notifies come back to
  `{PAYENGINE_PUBLIC_URL}/channels/{name}/notify`.
- `payengine serve` runs the worker and janitor in process (`PAYENGINE_GATEWAY_IN_PROCESS=1`, the
  default); `payengine gateway` runs them as a process of their own (then set it to 0 for serve).
  Any number of either share the `jobs` table safely (`FOR UPDATE SKIP LOCKED`, leases).
- Jobs it takes: `create_voucher` (vouchers.py), `close_order` (closing.py), `channel_refund`
  (channel_refunds.py), `auto_refund` (refunds.py). Outcomes of "paid" from any path go through
  `outcomes.apply_paid`; `refresh.refresh_payment` serves `GET /v1/payments/{id}?sync=true`.
- Operators: `GET /admin/exceptions`, `POST /admin/exceptions/{id}/resolve`, `GET /admin/gateway`.

Kept import-light on purpose: `engine.settings` imports `engine.channel_specs`, so this package's
`__init__` must not pull in aiohttp apps or the database. `engine.gateway.wiring` plugs it into the app.
"""
