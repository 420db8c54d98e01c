-- +goose Up
-- Who changed what, when: one row per successful change made through the admin API or CLI.
CREATE TABLE audit_log (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    actor           text NOT NULL,                  -- usr_..., key_..., or "operator" (the CLI), or "bootstrap"
    actor_type      text NOT NULL,                  -- user, api_key, operator, system
    app_id          text,                           -- the application concerned, if any (no FK: the log outlives it)
    action          text NOT NULL,                  -- e.g. application.create, endpoint.update, api_key.revoke
    resource_id     text NOT NULL DEFAULT '',
    request_id      text NOT NULL DEFAULT '',
    details         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_app ON audit_log (app_id, id DESC);

-- +goose Down
DROP TABLE audit_log;
