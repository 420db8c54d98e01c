-- +goose Up
-- Revocable credentials. Every login JWT and web UI session carries the
-- credential_version it was issued under and stops working once the user's
-- version moves on (password change or reset, role change, logout).
-- must_change_password marks an account (the first-run bootstrap admin) that
-- may do nothing but change its password until it has.
ALTER TABLE users
    ADD COLUMN credential_version bigint NOT NULL DEFAULT 1,
    ADD COLUMN must_change_password boolean NOT NULL DEFAULT false;

-- The user who created an API key, so the key is revoked when that user
-- leaves the application or is deleted. No foreign key: revoked keys keep
-- naming their creator after the user row is gone. NULL for keys created
-- before this migration or by the operator (CLI).
ALTER TABLE api_keys ADD COLUMN created_by text;
CREATE INDEX api_keys_created_by ON api_keys (created_by) WHERE revoked_at IS NULL;

-- +goose Down
DROP INDEX api_keys_created_by;
ALTER TABLE api_keys DROP COLUMN created_by;
ALTER TABLE users DROP COLUMN must_change_password, DROP COLUMN credential_version;
