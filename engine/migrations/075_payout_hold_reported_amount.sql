-- reported_amount_minor, reported_currency: what the channel reported for a payout held as amount_mismatch (the
-- amount in minor units and the currency of its answer), kept as values so operators see them whole: the hold's
-- note (last_error) is free text, shown with every long digit run masked. NULL for other holds, when the channel
-- reported neither, and once the hold is resolved. Nullable without a default: adding them rewrites nothing.
ALTER TABLE payouts ADD COLUMN reported_amount_minor bigint, ADD COLUMN reported_currency text;
-- Payouts held before: their note quotes what the channel reported.
UPDATE payouts
   SET reported_amount_minor = substring(last_error FROM 'reports (\d+) minor units')::bigint,
       reported_currency = substring(last_error FROM 'reports currency ([A-Z]{3})')
 WHERE hold_reason = 'amount_mismatch';
-- An amount_mismatch hold comes from the channel's answer about our out_payout_no: the channel has the payout. Held
-- ones were left 'sending', where a later "not found" would read as "never arrived" and lead to a resend and in
-- the end an unfreeze of money the channel may pay. They are processing.
UPDATE payouts SET status = 'processing' WHERE hold_reason = 'amount_mismatch' AND status = 'sending';
