-- Split (hot) accounts. A parent keeps its row as the identity merchants see; its sub-accounts are
-- ordinary ledger accounts with parent_id and sub_index (columns from 001). This table says how many
-- subs are active: subs with sub_index < sub_count take new legs; open subs at or above it are
-- retired (already swept, waiting until nothing can still route to them before they are closed).
CREATE TABLE account_splits (
    parent_id  text PRIMARY KEY REFERENCES accounts (id),
    sub_count  int NOT NULL CHECK (sub_count BETWEEN 2 AND 256),
    generation int NOT NULL DEFAULT 1,
    resized_at timestamptz NOT NULL DEFAULT now()
);
