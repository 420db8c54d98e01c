-- +goose Up
-- Deliver: a claimed message belongs to one deliver process (lease_owner)
-- until lease_until; the sweeper re-offers messages whose lease ran out.
-- retry_base is the attempt count at which the current retry schedule began
-- (a replay starts a fresh schedule without renumbering attempts).
ALTER TABLE messages
    ADD COLUMN lease_owner text,
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN retry_base integer NOT NULL DEFAULT 0;
CREATE INDEX messages_lease_owner ON messages (lease_owner) WHERE state = 'delivering';
CREATE INDEX messages_event ON messages (event_id);
CREATE INDEX messages_endpoint_state ON messages (endpoint_id, state) WHERE state IN ('pending', 'failed');

-- +goose Down
DROP INDEX messages_endpoint_state;
DROP INDEX messages_event;
DROP INDEX messages_lease_owner;
ALTER TABLE messages DROP COLUMN retry_base, DROP COLUMN lease_until, DROP COLUMN lease_owner;
