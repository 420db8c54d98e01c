-- +goose Up
-- The dashboard's recent failures (message.RecentFailures) read the newest
-- failed and dead states by updated_at. No index had that order, so each
-- dashboard load sorted every failed and dead state kept (30 days of them
-- by default). This one is partial: a webhook delivered first time never
-- enters it, and a failing one takes an entry per failed attempt (each
-- moves updated_at). A lease renewal, which changes only lease_until, stays
-- HOT.
--
-- On a partitioned table the index cannot be built CONCURRENTLY: on a big
-- database this migration holds writes to message_states while it reads
-- each partition once (README: "Upgrading a large database").
CREATE INDEX message_states_failures ON message_states (updated_at) WHERE state IN ('failed', 'dead');

-- +goose Down
DROP INDEX message_states_failures;
