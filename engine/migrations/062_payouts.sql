-- Payouts (withdrawals): customer wallet -> bank card, merchant available -> bank account.
-- The amount is frozen by a PAYOUT_FREEZE entry (source -> the owner's frozen account) in the transaction
-- that inserts the row; the payout worker sends it to the channel and books PAYOUT_SETTLE (frozen ->
-- channel receivable) or PAYOUT_UNFREEZE (frozen -> source) in the transaction that makes it final.
--
-- status: pending (frozen, never sent: safe to reroute or fail), sending (a create call may have reached
-- the channel: only a query may decide), processing (the channel accepted it), succeeded, failed.
-- The row is its own job: next_attempt_at is when a worker may take it, locked_until the worker's lease
-- (a crashed worker's payout is taken again once it runs out). Final rows have next_attempt_at NULL.
CREATE TABLE payouts (
    id                 text PRIMARY KEY,
    merchant_id        text NOT NULL REFERENCES merchants (id),
    merchant_payout_no text NOT NULL,
    source             text NOT NULL CHECK (source IN ('customer', 'merchant')),
    customer_id        text REFERENCES customers (id),
    source_account_id  text NOT NULL REFERENCES accounts (id),
    frozen_account_id  text NOT NULL REFERENCES accounts (id),
    amount             bigint NOT NULL CHECK (amount > 0),
    currency           char(3) NOT NULL,
    -- The channel the merchant asked for (or the default); the worker may reroute only while pending.
    channel            text NOT NULL,
    dest_kind          text NOT NULL CHECK (dest_kind IN ('bank_card', 'bank_account')),
    dest_number        text NOT NULL,
    dest_holder        text NOT NULL,
    dest_bank_code     text,
    description        text,
    status             text NOT NULL CHECK (status IN ('pending', 'sending', 'processing', 'succeeded', 'failed')),
    -- Our number at the channel (= the freeze entry's txn_no): every resend names the same payout.
    out_payout_no      char(32) NOT NULL UNIQUE,
    final_txn_no       char(32) UNIQUE,
    channel_payout_no  text,
    failure_code       text,
    failure_message    text,
    -- What limits/risk decided before the freeze (null until a control gate is wired in).
    risk               jsonb,
    sends              int NOT NULL DEFAULT 0,
    attempts           int NOT NULL DEFAULT 0,
    first_sent_at      timestamptz,
    last_sent_at       timestamptz,
    next_attempt_at    timestamptz,
    locked_by          text,
    locked_until       timestamptz,
    last_error         text,
    finished_at        timestamptz,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    CONSTRAINT payouts_merchant_payout_no UNIQUE (merchant_id, merchant_payout_no),
    CONSTRAINT payouts_final CHECK ((status IN ('succeeded', 'failed')) = (final_txn_no IS NOT NULL)),
    CONSTRAINT payouts_customer CHECK ((source = 'customer') = (customer_id IS NOT NULL))
);
CREATE INDEX payouts_due ON payouts (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX payouts_open_frozen ON payouts (frozen_account_id) WHERE status NOT IN ('succeeded', 'failed');
CREATE INDEX payouts_channel_day ON payouts (channel, created_at);
