-- Failed payouts owe their limit usage back the same recorded way as payments that ended without money
-- (engine/usage_release.py): the row is keyed by the payment's or the payout's id, so the key gets a name for
-- either. Payment and payout ids carry different prefixes, so they never collide. A rename rewrites nothing.
ALTER TABLE usage_releases RENAME COLUMN payment_id TO movement_id;
