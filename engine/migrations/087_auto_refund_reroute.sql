-- An exception's auto-refund (money a channel collected for a payment we had closed) that the channel refused is
-- resolved by an operator like a merchant's refund (engine/reroutes/, migration 086): to the wallet of the
-- payment's customer or a bank payout (refund_status rerouted), or by hand (manual); the exception is then
-- resolved. The compare-and-set is on refund_status = 'failed'.
ALTER TABLE exceptions DROP CONSTRAINT exceptions_refund_status_check;
ALTER TABLE exceptions ADD CONSTRAINT exceptions_refund_status_check
    CHECK (refund_status IN ('requested', 'succeeded', 'failed', 'rerouted', 'manual'));
ALTER TABLE exceptions ADD COLUMN refund_rerouted_to text CHECK (refund_rerouted_to IN ('wallet', 'bank', 'manual'));
ALTER TABLE exceptions ADD COLUMN refund_payout_id text REFERENCES payouts (id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE exceptions ADD COLUMN refund_resolved_by text;
-- Auto-refunds waiting for an operator: the gauge and the day report find them here.
CREATE INDEX exceptions_refund_failed ON exceptions (updated_at) WHERE refund_status = 'failed';
