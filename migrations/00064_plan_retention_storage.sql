-- +goose Up
-- Per plan: how long its applications' messages are kept (0 = the
-- configured retention.messages) and how many rows (messages plus delivery
-- attempts) an application may store (0 = no limit), so an endpoint that
-- always fails cannot fill the disk without touching the monthly quota.
-- Partitions are shared by every application, so messages are physically
-- dropped at the longest retention in use; a shorter plan retention hides
-- older messages from the API (they answer as past retention).
ALTER TABLE plans
    ADD COLUMN retention_days integer NOT NULL DEFAULT 0 CHECK (retention_days BETWEEN 0 AND 3650),
    ADD COLUMN max_stored bigint NOT NULL DEFAULT 0 CHECK (max_stored >= 0);

-- When the application was last found over its storage limit (logged once
-- until it is under again); NULL while under.
ALTER TABLE applications ADD COLUMN storage_full_at timestamptz;

-- +goose Down
ALTER TABLE applications DROP COLUMN storage_full_at;
ALTER TABLE plans DROP COLUMN max_stored, DROP COLUMN retention_days;
