-- Merchant settlement: per-merchant cycle, one batch per merchant, currency and settlement date, and
-- the payments and refunds each batch settled (each exactly once: the primary key says so).

-- No row = the default cycle, D+1. cycle_days 0 = D+0 (settled by the run of the same closed date).
CREATE TABLE merchant_settlement_terms (
    merchant_id text PRIMARY KEY REFERENCES merchants (id),
    cycle_days  int NOT NULL CHECK (cycle_days BETWEEN 0 AND 30),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE settlement_batches (
    id           text PRIMARY KEY,
    merchant_id  text NOT NULL REFERENCES merchants (id),
    currency     char(3) NOT NULL,
    settle_date  date NOT NULL,      -- the closed accounting date this run was for
    through_date date NOT NULL,      -- payments and refunds booked up to this date were due
    payments     int NOT NULL,
    gross        bigint NOT NULL,    -- Σ payment amounts
    fees         bigint NOT NULL,    -- Σ payment fees
    refunds      int NOT NULL,
    refunded     bigint NOT NULL,    -- Σ refund amounts
    refund_fees  bigint NOT NULL,    -- Σ fee returned with those refunds
    net          bigint NOT NULL CHECK (net >= 0),  -- gross - fees - (refunded - refund_fees)
    txn_no       char(32) UNIQUE,    -- the SETTLE entry; NULL when net = 0
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT settlement_batches_once UNIQUE (merchant_id, currency, settle_date)
);

CREATE TABLE settlement_items (
    object_id text PRIMARY KEY,      -- payment or refund id
    kind      text NOT NULL CHECK (kind IN ('payment', 'refund')),
    batch_id  text NOT NULL REFERENCES settlement_batches (id),
    amount    bigint NOT NULL,
    fee       bigint NOT NULL
);
CREATE INDEX settlement_items_batch ON settlement_items (batch_id);
