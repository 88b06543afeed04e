-- Transfers: customer wallet -> customer wallet of the same merchant (TRANSFER_C2C) and the merchant's
-- available balance -> a customer wallet (CASHBACK). Each row is written in the booking transaction of
-- its journal entry, so a transfer row exists exactly when its money moved (status is always final).
CREATE TABLE transfers (
    id                text PRIMARY KEY,
    merchant_id       text NOT NULL REFERENCES merchants (id),
    transfer_no       text NOT NULL,
    source            text NOT NULL CHECK (source IN ('customer', 'merchant')),
    amount            bigint NOT NULL CHECK (amount > 0),
    currency          char(3) NOT NULL,
    from_customer_id  text REFERENCES customers (id),
    to_customer_id    text NOT NULL REFERENCES customers (id),
    payer_account_id  text NOT NULL REFERENCES accounts (id),
    payee_account_id  text NOT NULL REFERENCES accounts (id),
    status            text NOT NULL CHECK (status IN ('succeeded')),
    txn_no            char(32) NOT NULL UNIQUE,
    description       text,
    metadata          jsonb NOT NULL DEFAULT '{}',
    -- The limits/risk decision taken before booking (engine/controls), as it recorded it; NULL when
    -- no control gate ran.
    risk              jsonb,
    created_at        timestamptz NOT NULL,
    CONSTRAINT transfers_merchant_transfer_no UNIQUE (merchant_id, transfer_no),
    CONSTRAINT transfers_source_payer CHECK ((source = 'customer') = (from_customer_id IS NOT NULL)),
    CONSTRAINT transfers_not_to_self CHECK (payer_account_id <> payee_account_id)
);
CREATE INDEX transfers_merchant_list ON transfers (merchant_id, created_at DESC, id DESC);
CREATE INDEX transfers_to_customer ON transfers (to_customer_id);
CREATE INDEX transfers_from_customer ON transfers (from_customer_id) WHERE from_customer_id IS NOT NULL;
