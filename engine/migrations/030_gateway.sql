-- Channel gateway: one row per (channel, our order number) we asked a channel for, and the exception
-- records an operator works through. Money columns are bigint minor units.

-- Our order number at every channel is the payment's txn_no, so a retry at the same channel can only
-- ever name the same channel order; the primary key makes that a database rule. A payment that failed
-- over has one row per channel it tried. status: creating (asked, no answer yet), unknown (timed out:
-- query before retrying), created (voucher ready), failed (this channel will not serve it), paid, closed.
CREATE TABLE channel_orders (
    channel          text NOT NULL,
    out_trade_no     text NOT NULL,
    payment_id       text NOT NULL REFERENCES payments (id),
    status           text NOT NULL
        CHECK (status IN ('creating', 'unknown', 'created', 'failed', 'paid', 'closed')),
    attempts         int NOT NULL DEFAULT 0,
    channel_order_id text,
    channel_txn_id   text,
    paid_amount      bigint,
    paid_at          timestamptz,
    queries          int NOT NULL DEFAULT 0,
    next_query_at    timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (channel, out_trade_no)
);
CREATE INDEX channel_orders_payment ON channel_orders (payment_id);
-- One channel transaction books at most one payment, whatever path (notify, janitor, close) reports it.
CREATE UNIQUE INDEX channel_orders_txn ON channel_orders (channel, channel_txn_id) WHERE channel_txn_id IS NOT NULL;
-- The janitor's query sweep reads only orders still waiting for an answer.
CREATE INDEX channel_orders_query_due ON channel_orders (next_query_at) WHERE next_query_at IS NOT NULL;

-- Things that need a human: money the channel reports that we could not book as asked (unknown order,
-- amount mismatch), a success after we closed the payment (auto-refunded), answers we could not trust.
-- dedupe_key folds repeats of one problem (a channel retrying the same notify) into one row.
CREATE TABLE exceptions (
    id                text PRIMARY KEY,
    kind              text NOT NULL,
    channel           text,
    payment_id        text,
    out_trade_no      text,
    channel_txn_id    text,
    amount            bigint,
    currency          text,
    detail            text NOT NULL,
    status            text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    dedupe_key        text NOT NULL UNIQUE,
    occurrences       int NOT NULL DEFAULT 1,
    -- An auto-refund through the channel, when the exception carries one.
    refund_status     text CHECK (refund_status IN ('requested', 'succeeded', 'failed')),
    out_refund_no     text UNIQUE,
    refund_txn_no     char(32) UNIQUE,
    channel_refund_id text,
    resolution        text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    resolved_at       timestamptz
);
CREATE INDEX exceptions_listing ON exceptions (status, created_at DESC);
CREATE INDEX exceptions_payment ON exceptions (payment_id) WHERE payment_id IS NOT NULL;

-- The janitor hands jobs of a crashed worker (lease run out) back to the queue; this keeps that cheap.
CREATE INDEX jobs_running_lease ON jobs (locked_until) WHERE status = 'running';
