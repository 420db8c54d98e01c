-- +goose Up
-- Idempotency-Key on POSTs that create things (applications, endpoints,
-- replays, test events): the first answer to a key is kept for 24 hours and
-- answered again to a retry with the same body. One row per tenant (the
-- API key's application, or the user) and key; the admin module purges
-- rows older than 24 hours.
CREATE TABLE idempotency_keys (
    scope        text        NOT NULL,                   -- app:<id> for an API key, user:<id> for a user
    key          text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash bytea       NOT NULL,                   -- sha256 of method, path and body
    status       int,                                    -- null while the first request runs
    content_type text        NOT NULL DEFAULT '',
    response     bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
