-- Settlement pays what the ledger holds for the merchant, not only its payments and refunds: every other entry
-- that moved the merchant's pending account (an operator's adjustment, a reversal, a re-routed refund) is an item
-- of the batch that settles it, named by its transaction number, carrying the signed amount it moved.
ALTER TABLE settlement_items DROP CONSTRAINT settlement_items_kind_check;
ALTER TABLE settlement_items ADD CONSTRAINT settlement_items_kind_check
    CHECK (kind IN ('payment', 'refund', 'adjustment'));
ALTER TABLE settlement_batches ADD COLUMN adjustments int NOT NULL DEFAULT 0;
ALTER TABLE settlement_batches ADD COLUMN adjusted bigint NOT NULL DEFAULT 0;  -- Σ signed (credit to the merchant +)

-- The entries whose pending legs settlement reads apart from payments and refunds: every code but those
-- engine/settlement/store.py SETTLED_AS_PAYMENTS lists (tests/settlement checks the two lists agree).
CREATE INDEX journal_entries_settled_apart ON journal_entries (accounting_date)
    WHERE txn_code NOT IN ('PAY_CHANNEL', 'PAY_CHANNEL_INVOICED', 'PAY_WALLET', 'PAY_WALLET_INVOICED',
                           'REFUND_CHANNEL', 'REFUND_CHANNEL_INVOICED', 'REFUND_WALLET', 'REFUND_WALLET_INVOICED',
                           'SETTLE', 'SWEEP');
