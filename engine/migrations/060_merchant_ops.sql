-- Merchant operations: profile fields the admin API edits, suspension, API key pairs with rollover,
-- and webhook secret rotation. Existing rows stay valid: new columns are nullable or defaulted, and the
-- old status 'disabled' is still accepted next to the new 'suspended'.

-- 'suspended' answers 403 and keeps everything; 'disabled' (legacy) still answers 401 as before.
ALTER TABLE merchants DROP CONSTRAINT merchants_status_check;
ALTER TABLE merchants ADD CONSTRAINT merchants_status_check
    CHECK (status IN ('active', 'suspended', 'disabled'));

-- NULL allowed_* = every method / channel the engine knows (what merchants had before this migration).
ALTER TABLE merchants
    ADD COLUMN allowed_methods  text[] CHECK (allowed_methods <@ ARRAY['wallet', 'channel']::text[]),
    ADD COLUMN allowed_channels text[],
    ADD COLUMN status_changed_at timestamptz,
    ADD COLUMN updated_at        timestamptz NOT NULL DEFAULT now(),
    -- The webhook secret before the last rotation: deliveries carry a second v1 signature with it until
    -- webhook_prev_expires_at, so a receiver still holding the old secret keeps verifying meanwhile.
    ADD COLUMN webhook_prev_secret_salt bytea,
    ADD COLUMN webhook_prev_expires_at  timestamptz;

-- API keys. A secret is never stored: it is HMAC(server key, merchant id, salt) like before. The one
-- 'active' key is the primary (requests without X-Key-Id use it; merchants.secret_salt mirrors its salt);
-- a 'rolling' key is the previous primary and verifies until expires_at; 'revoked' keys never verify.
CREATE TABLE merchant_api_keys (
    id          text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants (id),
    salt        bytea NOT NULL,
    state       text NOT NULL CHECK (state IN ('active', 'rolling', 'revoked')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz,
    CONSTRAINT merchant_api_keys_rolling_expires CHECK (state <> 'rolling' OR expires_at IS NOT NULL),
    CONSTRAINT merchant_api_keys_revoked_at CHECK (state <> 'revoked' OR revoked_at IS NOT NULL)
);
CREATE UNIQUE INDEX merchant_api_keys_one_active ON merchant_api_keys (merchant_id) WHERE state = 'active';
CREATE INDEX merchant_api_keys_usable ON merchant_api_keys (merchant_id) WHERE state <> 'revoked';

-- Every merchant has its primary key row, whichever path inserted it (admin API, CLI, demo seeding,
-- SQL by hand): the key id is made here from the merchant's salt.
CREATE FUNCTION merchant_primary_key_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO merchant_api_keys (id, merchant_id, salt, state, created_at)
    VALUES ('key_' || substr(md5(NEW.id || encode(NEW.secret_salt, 'hex')), 1, 24), NEW.id, NEW.secret_salt,
            'active', NEW.created_at)
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;

CREATE TRIGGER merchants_primary_key AFTER INSERT ON merchants
    FOR EACH ROW EXECUTE FUNCTION merchant_primary_key_row();

INSERT INTO merchant_api_keys (id, merchant_id, salt, state, created_at)
SELECT 'key_' || substr(md5(id || encode(secret_salt, 'hex')), 1, 24), id, secret_salt, 'active', created_at
FROM merchants;
