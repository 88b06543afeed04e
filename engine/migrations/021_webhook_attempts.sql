-- Webhook delivery: every attempt to POST an outbox event to the merchant is recorded here, and the
-- merchant's endpoint may be set after creation. An event's retry window starts at window_started_at
-- (its creation, or the moment a merchant asked to re-send it); `attempts` counts attempts in the
-- current window and drives the backoff, the full history stays in webhook_attempts.
ALTER TABLE outbox_events ADD COLUMN window_started_at timestamptz;

CREATE TABLE webhook_attempts (
    id          bigserial PRIMARY KEY,
    event_id    text NOT NULL REFERENCES outbox_events (id),
    attempt     int NOT NULL,
    url         text,
    started_at  timestamptz NOT NULL,
    duration_ms int NOT NULL CHECK (duration_ms >= 0),
    status_code int,            -- NULL: no HTTP answer (refused, timed out, no endpoint)
    succeeded   boolean NOT NULL,
    error       text
);
CREATE INDEX webhook_attempts_event ON webhook_attempts (event_id, id);
-- Listing a merchant's events by type, newest first.
CREATE INDEX outbox_events_merchant_type ON outbox_events (merchant_id, type, created_at DESC);
