-- Merchant API: merchants, customers, payments, vouchers, refunds, state transitions, idempotency keys,
-- the jobs the channel gateway takes, and the webhook outbox. Money columns are bigint minor units.

-- A merchant's API secret is never stored: it is HMAC-SHA256(server key, id || secret_salt), so a dump
-- of this table alone cannot sign requests. Rotating the secret = a new salt.
CREATE TABLE merchants (
    id                 text PRIMARY KEY,
    name               text NOT NULL,
    secret_salt        bytea NOT NULL,
    fee_bps            int NOT NULL DEFAULT 0 CHECK (fee_bps BETWEEN 0 AND 10000),
    fee_fixed          bigint NOT NULL DEFAULT 0 CHECK (fee_fixed >= 0),
    webhook_url        text,
    webhook_secret_salt bytea,
    status             text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE customers (
    id                text PRIMARY KEY,
    merchant_id       text NOT NULL REFERENCES merchants (id),
    external_id       text NOT NULL,
    currency          char(3) NOT NULL,
    wallet_account_id text NOT NULL REFERENCES accounts (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customers_merchant_external UNIQUE (merchant_id, external_id)
);

CREATE TABLE topups (
    id          text PRIMARY KEY,
    customer_id text NOT NULL REFERENCES customers (id),
    topup_no    text NOT NULL,
    amount      bigint NOT NULL CHECK (amount > 0),
    txn_no      char(32) NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT topups_customer_topup_no UNIQUE (customer_id, topup_no)
);

-- status follows engine/payments/states.py; amount_refunded <= amount is the refund limit, enforced by
-- the CHECK and by the conditional UPDATE that reserves each refund.
CREATE TABLE payments (
    id                text PRIMARY KEY,
    merchant_id       text NOT NULL REFERENCES merchants (id),
    merchant_order_no text NOT NULL,
    amount            bigint NOT NULL CHECK (amount > 0),
    currency          char(3) NOT NULL,
    method            text NOT NULL CHECK (method IN ('wallet', 'channel')),
    channel           text,
    customer_id       text REFERENCES customers (id),
    payer_account_id  text REFERENCES accounts (id),
    status            text NOT NULL
        CHECK (status IN ('pending_voucher', 'awaiting_payment', 'succeeded', 'failed', 'closed')),
    fee               bigint NOT NULL CHECK (fee >= 0 AND fee <= amount),
    amount_refunded   bigint NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0 AND amount_refunded <= amount),
    fee_refunded      bigint NOT NULL DEFAULT 0 CHECK (fee_refunded >= 0 AND fee_refunded <= fee),
    txn_no            char(32) NOT NULL UNIQUE,
    description       text,
    metadata          jsonb NOT NULL DEFAULT '{}',
    expires_at        timestamptz NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    CONSTRAINT payments_merchant_order_no UNIQUE (merchant_id, merchant_order_no),
    CONSTRAINT payments_method_fields CHECK (
        (method = 'wallet' AND customer_id IS NOT NULL AND payer_account_id IS NOT NULL)
        OR (method = 'channel' AND channel IS NOT NULL))
);
CREATE INDEX payments_merchant_list ON payments (merchant_id, created_at DESC, id DESC);
-- The order-expiry sweep scans only unpaid payments by deadline.
CREATE INDEX payments_unpaid_expiry ON payments (expires_at)
    WHERE status IN ('pending_voucher', 'awaiting_payment');

-- The internal voucher handed out at once; the channel gateway fills the channel's fields later.
CREATE TABLE vouchers (
    id               text PRIMARY KEY,
    payment_id       text NOT NULL UNIQUE REFERENCES payments (id),
    channel          text NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'ready', 'failed', 'expired')),
    channel_order_no text,          -- the channel's prepay id / order id once created
    pay_url          text,
    qr_code          text,
    failure_code     text,
    expires_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

CREATE TABLE refunds (
    id                 text PRIMARY KEY,
    payment_id         text NOT NULL REFERENCES payments (id),
    merchant_id        text NOT NULL REFERENCES merchants (id),
    merchant_refund_no text NOT NULL,
    amount             bigint NOT NULL CHECK (amount > 0),
    fee_refunded       bigint NOT NULL CHECK (fee_refunded >= 0),
    status             text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    reason             text,
    txn_no             char(32) NOT NULL UNIQUE,
    channel_refund_no  text,
    failure_code       text,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    CONSTRAINT refunds_payment_refund_no UNIQUE (payment_id, merchant_refund_no)
);
CREATE INDEX refunds_payment ON refunds (payment_id);

-- Every state change of a payment, voucher or refund, with its time and reason (audit trail).
CREATE TABLE transitions (
    id          bigserial PRIMARY KEY,
    object_id   text NOT NULL,
    from_status text,
    to_status   text NOT NULL,
    event       text NOT NULL,
    reason      text,
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX transitions_object ON transitions (object_id, id);

-- Idempotency keys: the unique primary key decides which of two concurrent requests runs.
-- status_code IS NULL means in flight; locked_until lets a retry take over from a crashed request.
CREATE TABLE idempotency_keys (
    merchant_id   text NOT NULL,
    key           text NOT NULL,
    fingerprint   bytea NOT NULL,
    status_code   int,
    response_body bytea,
    locked_until  timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Durable work for background workers (channel gateway: create_voucher, close_order, refund).
-- Workers take rows with SELECT ... FOR UPDATE SKIP LOCKED WHERE status = 'queued' AND run_after <= now().
CREATE TABLE jobs (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL,
    ref_id       text NOT NULL,
    payload      jsonb NOT NULL DEFAULT '{}',
    status       text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts     int NOT NULL DEFAULT 0,
    run_after    timestamptz NOT NULL DEFAULT now(),
    locked_by    text,
    locked_until timestamptz,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT jobs_kind_ref UNIQUE (kind, ref_id)
);
CREATE INDEX jobs_ready ON jobs (run_after, id) WHERE status = 'queued';

-- Webhook outbox: written in the same transaction as the state change it reports; a delivery worker
-- sends pending rows and records attempts.
CREATE TABLE outbox_events (
    id              text PRIMARY KEY,
    merchant_id     text NOT NULL REFERENCES merchants (id),
    type            text NOT NULL,
    object_id       text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL,
    delivery_status text NOT NULL DEFAULT 'pending' CHECK (delivery_status IN ('pending', 'delivered', 'dead')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    last_error      text
);
CREATE INDEX outbox_events_pending ON outbox_events (next_attempt_at) WHERE delivery_status = 'pending';
CREATE INDEX outbox_events_merchant ON outbox_events (merchant_id, created_at DESC);
