-- Payouts in reconciliation: statement lines of kind 'payout' are items too, naming the payout they match.
ALTER TABLE recon_items DROP CONSTRAINT recon_items_kind_check;
ALTER TABLE recon_items ADD CONSTRAINT recon_items_kind_check CHECK (kind IN ('payment', 'refund', 'payout'));
ALTER TABLE recon_items ADD COLUMN payout_id text;
CREATE INDEX recon_items_payout ON recon_items (payout_id) WHERE payout_id IS NOT NULL;
