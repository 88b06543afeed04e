-- Limits (额度): configured limit rules, the usage record behind the Redis counters, and the
-- controls record stored with each payment.

-- One row per limit rule. merchant_id '' = the global default; a merchant's row with the same
-- (scope, time_window, method, currency) overrides it (both maxima NULL = "no limit" for that merchant).
-- currency '*' = the rule applies to every currency (counted per currency: amounts never mix).
CREATE TABLE limit_rules (
    merchant_id text NOT NULL DEFAULT '',
    scope       text NOT NULL CHECK (scope IN ('customer', 'merchant')),
    time_window text NOT NULL CHECK (time_window IN ('single', 'daily', 'monthly')),
    method      text NOT NULL CHECK (method IN ('*', 'wallet', 'channel', 'transfer', 'payout')),
    currency    text NOT NULL DEFAULT '*',
    amount_max  bigint CHECK (amount_max >= 0),
    count_max   bigint CHECK (count_max >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, scope, time_window, method, currency),
    CHECK (time_window <> 'single' OR count_max IS NULL)
);

-- The record of admitted usage: one row per admission, inserted (committed) BEFORE the Redis
-- counters are incremented and deleted when the admission is released. When Redis loses a subject's
-- counters they are rebuilt from these rows, so every admission that may still book is counted.
-- Append-only on the hot path: 200 concurrent payments of one merchant insert rows, never update one.
CREATE TABLE limit_usage (
    id          text PRIMARY KEY,
    merchant_id text NOT NULL,
    customer_id text,
    kind        text NOT NULL,
    method      text NOT NULL,
    currency    text NOT NULL,
    amount      bigint NOT NULL CHECK (amount > 0),
    day         date NOT NULL,  -- the accounting date the admission counted against
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX limit_usage_customer ON limit_usage (merchant_id, customer_id, day) WHERE customer_id IS NOT NULL;
CREATE INDEX limit_usage_merchant ON limit_usage (merchant_id, day);

-- Risk decisions and limits counted for a payment (Admission.record()), written in its booking transaction.
ALTER TABLE payments ADD COLUMN controls jsonb;
