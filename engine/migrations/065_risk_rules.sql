-- Risk rules as data, the blocklist, and one version counter the gate's caches poll.

CREATE TABLE risk_rules (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('velocity', 'amount_anomaly', 'blocklist')),
    action      text NOT NULL CHECK (action IN ('review', 'deny')),
    merchant_id text,            -- NULL: every merchant
    methods     text[] NOT NULL DEFAULT '{}',  -- empty: every method
    params      jsonb NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Blocked customers and instruments. Only a keyed hash (HMAC-SHA256) of the value is stored, never a
-- card or bank account number.
CREATE TABLE risk_blocklist (
    list       text NOT NULL CHECK (list IN ('customer', 'instrument')),
    digest     text NOT NULL,
    reason     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list, digest)
);

-- Bumped by every change to limit_rules, risk_rules or risk_blocklist (same transaction), so a
-- process's cache reloads only when something changed.
CREATE TABLE control_version (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    version bigint NOT NULL
);
INSERT INTO control_version (version) VALUES (1);
