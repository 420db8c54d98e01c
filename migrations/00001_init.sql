-- +goose Up
-- Base schema. Ids are prefixed ULIDs made by the application (app_, ep_, msg_, key_, usr_),
-- so they sort by creation time and say what they name.

CREATE TABLE plans (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    monthly_quota   bigint NOT NULL CHECK (monthly_quota >= 0),     -- successful deliveries per calendar month (UTC)
    max_endpoints   integer NOT NULL CHECK (max_endpoints >= 0),
    rate_limit      integer NOT NULL DEFAULT 0 CHECK (rate_limit >= 0), -- max events/s per endpoint, 0 = unlimited
    created_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO plans (id, name, monthly_quota, max_endpoints, rate_limit)
VALUES ('free', 'Free', 10000, 5, 10);

CREATE TABLE users (
    id              text PRIMARY KEY,
    email           text NOT NULL,
    password_hash   text NOT NULL,
    role            text NOT NULL CHECK (role IN ('admin', 'member')),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE applications (
    id              text PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    plan_id         text NOT NULL DEFAULT 'free' REFERENCES plans (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Which members may see which applications; admins see all.
CREATE TABLE application_members (
    app_id          text NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    user_id         text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (app_id, user_id)
);
CREATE INDEX application_members_user ON application_members (user_id);

CREATE TABLE api_keys (
    id              text PRIMARY KEY,
    app_id          text NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    name            text NOT NULL DEFAULT '',
    prefix          text NOT NULL,               -- first characters of the key, shown in lists
    hash            bytea NOT NULL UNIQUE,       -- SHA-256 of the full key; the key itself is never stored
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz,
    revoked_at      timestamptz
);
CREATE INDEX api_keys_app ON api_keys (app_id);

CREATE TABLE endpoints (
    id                      text PRIMARY KEY,
    app_id                  text NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    url                     text NOT NULL,
    description             text NOT NULL DEFAULT '',
    enabled                 boolean NOT NULL DEFAULT true,
    disabled_reason         text NOT NULL DEFAULT '',
    filter                  jsonb NOT NULL DEFAULT '{}',   -- chains, addresses, topics, events, abi, conditions
    confirmations           integer NOT NULL DEFAULT 0 CHECK (confirmations >= 0),
    batch_max               integer NOT NULL DEFAULT 0 CHECK (batch_max >= 0),
    batch_wait_ms           integer NOT NULL DEFAULT 0 CHECK (batch_wait_ms >= 0),
    rate_limit              integer NOT NULL DEFAULT 0 CHECK (rate_limit >= 0),  -- events/s, 0 = plan default
    retry_schedule          text NOT NULL DEFAULT '',        -- "0s,5s,5m,..."; empty = global default
    allow_redirects         boolean NOT NULL DEFAULT false,
    secret_enc              bytea NOT NULL,                  -- signing secret, sealed with the configured secret key
    old_secret_enc          bytea,                           -- previous secret during rotation
    old_secret_expires_at   timestamptz,
    failing_since           timestamptz,                     -- first failure of the current unbroken run of failures
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX endpoints_app ON endpoints (app_id);

CREATE TABLE messages (
    id              text PRIMARY KEY,
    app_id          text NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    endpoint_id     text NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    event_id        text NOT NULL,          -- hook.EventID, or the batch id for a batch
    type            text NOT NULL,          -- log, log.removed, batch
    webhook_id      text NOT NULL,          -- Standard Webhooks message id; kept across retries and replays
    chain_id        bigint NOT NULL,
    block_number    bigint NOT NULL,
    block_hash      text NOT NULL DEFAULT '',
    tx_hash         text NOT NULL DEFAULT '',
    payload         json NOT NULL,          -- the exact body POSTed (json keeps its bytes; jsonb would reorder keys)
    state           text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_status     integer,
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- one message per endpoint and event; a log and its retraction are two messages
    UNIQUE (endpoint_id, event_id, type)
);
CREATE INDEX messages_app_created ON messages (app_id, created_at DESC, id DESC);
CREATE INDEX messages_endpoint_created ON messages (endpoint_id, created_at DESC, id DESC);
CREATE INDEX messages_state ON messages (state, updated_at) WHERE state IN ('pending', 'delivering', 'failed', 'quota_exceeded');
CREATE INDEX messages_tx ON messages (tx_hash);
CREATE INDEX messages_block ON messages (endpoint_id, block_number);

CREATE TABLE delivery_history (
    id                  bigserial PRIMARY KEY,
    message_id          text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    endpoint_id         text NOT NULL,
    app_id              text NOT NULL,
    attempt             integer NOT NULL,
    status_code         integer,            -- null when no response arrived
    error_class         text NOT NULL DEFAULT '',  -- '', timeout, connect, dns, ssrf, http_4xx, http_5xx, ...
    error               text NOT NULL DEFAULT '',
    request_headers     jsonb NOT NULL DEFAULT '{}',
    response_headers    jsonb NOT NULL DEFAULT '{}',
    response_excerpt    text NOT NULL DEFAULT '',
    latency_ms          integer NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX delivery_history_message ON delivery_history (message_id, attempt);
CREATE INDEX delivery_history_endpoint ON delivery_history (endpoint_id, created_at DESC);

CREATE TABLE usage (
    app_id          text NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    month           date NOT NULL,          -- first day of the month, UTC
    deliveries      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, month)
);

-- +goose Down
DROP TABLE usage;
DROP TABLE delivery_history;
DROP TABLE messages;
DROP TABLE endpoints;
DROP TABLE api_keys;
DROP TABLE application_members;
DROP TABLE applications;
DROP TABLE users;
DROP TABLE plans;
