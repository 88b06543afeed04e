-- Settlement pays what the ledger holds for the merchant, not only its payments and refunds: every other entry
-- that moved the merchant's pending account (an operator's adjustment, a reversal, a re-routed refund) is an item
-- of the batch that settles it, named by its transaction number, carrying the signed amount it moved.
ALTER TABLE settlement_items DROP CONSTRAINT settlement_items_kind_check;
ALTER TABLE settlement_items ADD CONSTRAINT settlement_items_kind_check
    CHECK (kind IN ('payment', 'refund', 'adjustment'));
ALTER TABLE settlement_batches ADD COLUMN adjustments int NOT NULL DEFAULT 0;
ALTER TABLE settlement_batches ADD COLUMN adjusted bigint NOT NULL DEFAULT 0;  -- Σ signed (credit to the merchant +)

-- The entries whose pending legs settlement reads as adjustments: every code but those settled through payments
-- and refunds and those that never post to a merchant's pending account (engine/settlement/store.py
-- NOT_ADJUSTMENTS; tests/settlement checks the two lists agree). Rare, so the scan stays small.
CREATE INDEX journal_entries_settled_apart ON journal_entries (accounting_date)
    WHERE txn_code NOT IN ('PAY_CHANNEL', 'PAY_CHANNEL_INVOICED', 'PAY_WALLET', 'PAY_WALLET_INVOICED',
                           'REFUND_CHANNEL', 'REFUND_CHANNEL_INVOICED', 'REFUND_WALLET', 'REFUND_WALLET_INVOICED',
                           'SETTLE', 'SWEEP', 'TOPUP', 'TRANSFER_C2C', 'CASHBACK', 'FEE_INVOICE_PAID',
                           'FEE_INVOICE_RECEIVED', 'PAYOUT_FREEZE', 'PAYOUT_SETTLE', 'PAYOUT_UNFREEZE');
