-- +goose Up
-- Custom static headers per endpoint (name -> value), sent with every
-- delivery; bounded and checked by package endpoint (never a Standard
-- Webhooks or hop-by-hop header).
ALTER TABLE endpoints ADD COLUMN headers jsonb NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE endpoints DROP COLUMN headers;
