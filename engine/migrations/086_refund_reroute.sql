-- Failed channel refunds resolved by an operator (engine/reroutes/): a refund the channel finally refused
-- (status failed) is re-routed to the customer's wallet or to a bank payout (status rerouted), or marked for
-- manual handling (status manual, no money moves). The move out of failed is a compare-and-set on status, in
-- the transaction that books the money, writes the merchant's event and the audit row.
ALTER TABLE refunds DROP CONSTRAINT refunds_status_check;
ALTER TABLE refunds ADD CONSTRAINT refunds_status_check
    CHECK (status IN ('pending', 'succeeded', 'failed', 'rerouted', 'manual'));
ALTER TABLE refunds ADD COLUMN rerouted_to text CHECK (rerouted_to IN ('wallet', 'bank', 'manual'));
-- The bank payout that carries a refund re-routed to the bank; deferred: the refund moves before the payout row
-- is written, in the same transaction.
ALTER TABLE refunds ADD COLUMN payout_id text REFERENCES payouts (id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE refunds ADD COLUMN resolved_by text;
ALTER TABLE refunds ADD COLUMN resolution_note text;
ALTER TABLE refunds ADD COLUMN resolved_at timestamptz;
ALTER TABLE refunds ADD CONSTRAINT refunds_resolution
    CHECK ((status IN ('rerouted', 'manual')) = (rerouted_to IS NOT NULL AND resolved_by IS NOT NULL));
ALTER TABLE refunds ADD CONSTRAINT refunds_bank_payout CHECK ((rerouted_to = 'bank') = (payout_id IS NOT NULL));
-- Failed refunds wait for an operator: the list, the gauge and the day report find them here, oldest first.
CREATE INDEX refunds_failed ON refunds (updated_at) WHERE status = 'failed';
-- What a refund re-routed to the bank owes the customer until its payout is paid (the payout's source).
INSERT INTO subjects (code, name, category, normal_side) VALUES ('2202', 'Refunds owed to customers', 'liability', 'C')
ON CONFLICT (code) DO NOTHING;
