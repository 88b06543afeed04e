-- When a hot sub-account may start taking routed legs. A sub created (or reopened) hot is invisible
-- to routing until every process's hot-account cache has seen it, so no debit on it ever skips the
-- buffer's reservation; meanwhile legs keep landing on the parent row and tidy sweeps them over.
CREATE TABLE split_sub_activations (
    account_id  text PRIMARY KEY REFERENCES accounts (id),
    active_from timestamptz NOT NULL
);
