-- Channel reconciliation (对账): one run per channel and statement date, one item per statement line or
-- per transaction of ours the statement lacks, and the supplements (补单) booked from statements.

CREATE TABLE recon_runs (
    id             text PRIMARY KEY,
    channel        text NOT NULL,
    statement_date date NOT NULL,
    status         text NOT NULL CHECK (status IN ('running', 'done', 'refused')),
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    error          text,
    summary        jsonb,          -- counts per outcome, our totals vs the file's totals
    malformed      jsonb,          -- [{line_no, text, reason}] lines the parser could not read
    CONSTRAINT recon_runs_channel_date UNIQUE (channel, statement_date)
);

-- state: ok (nothing to do), open (an operator or a later statement must act; settlement waits),
-- resolved (the strategy's action fixed it, e.g. a supplement), cleared (a later statement showed it).
CREATE TABLE recon_items (
    id             bigserial PRIMARY KEY,
    run_id         text NOT NULL REFERENCES recon_runs (id),
    kind           text NOT NULL CHECK (kind IN ('payment', 'refund')),
    reference      text NOT NULL,  -- our reference as the channel knows it (out_trade_no / out_refund_no)
    channel_txn_id text,
    payment_id     text,
    refund_id      text,
    merchant_id    text,
    currency       char(3),
    our_status     text NOT NULL,
    their_status   text NOT NULL,
    our_amount     bigint,
    their_amount   bigint,
    outcome        text NOT NULL
        CHECK (outcome IN ('matched', 'long', 'short', 'amount_mismatch', 'status_mismatch')),
    action         text NOT NULL,
    state          text NOT NULL CHECK (state IN ('ok', 'open', 'resolved', 'cleared')),
    note           text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT recon_items_run_ref UNIQUE (run_id, kind, reference)
);
CREATE INDEX recon_items_payment ON recon_items (payment_id) WHERE payment_id IS NOT NULL;
CREATE INDEX recon_items_open ON recon_items (run_id) WHERE state = 'open';

-- A success booked because the channel's statement showed it and we had missed it. The channel's
-- transaction id is unique, so a statement processed twice (or by two operators) books once.
CREATE TABLE recon_supplements (
    channel        text NOT NULL,
    channel_txn_id text NOT NULL,
    payment_id     text NOT NULL UNIQUE,
    run_id         text NOT NULL REFERENCES recon_runs (id),
    txn_no         char(32) NOT NULL,
    amount         bigint NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, channel_txn_id)
);
