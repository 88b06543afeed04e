-- channel_chosen: the merchant named the payout's channel, so it is never changed. An unnamed one may move to
-- another channel the merchant may use that can pay out, but only while the payout is pending (nothing sent):
-- rows from before this column keep their channel (true).
ALTER TABLE payouts ADD COLUMN channel_chosen boolean NOT NULL DEFAULT true;
-- hold_reason: the channel's word could not be booked as it stands (it reports another amount or currency than
-- ours). The payout stays open with its amount frozen, no worker takes it again (next_attempt_at NULL) and it
-- cannot be made final until a person resolves it and clears the hold.
ALTER TABLE payouts ADD COLUMN hold_reason text;
CREATE INDEX payouts_held ON payouts (updated_at) WHERE hold_reason IS NOT NULL;
