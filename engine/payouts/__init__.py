"""Payouts (withdrawals): customer wallet -> bank card, merchant available balance -> bank account.

- `POST /v1/payouts` (flow.py) validates the destination, then in one PostgreSQL transaction inserts the
  payout and books PAYOUT_FREEZE (source -> the owner's frozen account): the amount is no longer spendable.
- The payout worker (worker.py, run by the gateway context in `payengine gateway` and in-process serve)
  sends it to the channel, idempotent per out_payout_no, and on a final answer books PAYOUT_SETTLE
  (frozen -> channel receivable) or PAYOUT_UNFREEZE (frozen -> source) with its webhook event (outcome.py).
- An unknown outcome (timeout, 5xx, a crash after sending) is asked at the channel, never guessed
  (decision.py); `checks.py` holds the money check "frozen balances = Σ open payouts".
- An answer that cannot be booked as it stands (another amount or currency than ours) holds the payout for a
  person; operators list, show and resolve held payouts (retry, fail, succeed) through holds.py, from the admin
  API (admin.py) or `payengine payouts` (cli.py), booking through the same outcome.finish as the worker.
"""
