-- +goose Up
-- Operational webhooks: an endpoint whose ops_events is not empty receives
-- EthHook's own events of those types (package ops) instead of chain logs.
-- Only an admin sets it. The partial index keeps the subscriber lookup of
-- every event a scan of the operator's few endpoints.
ALTER TABLE endpoints ADD COLUMN ops_events text[] NOT NULL DEFAULT '{}';
CREATE INDEX endpoints_ops_events ON endpoints USING gin (ops_events) WHERE ops_events <> '{}';

-- +goose Down
DROP INDEX endpoints_ops_events;
ALTER TABLE endpoints DROP COLUMN ops_events;
