-- +goose Up
-- Deliver's lanes pull an endpoint's waiting messages from Postgres when
-- they have room (due retries first, then pending oldest first), instead of
-- waiting for the sweeper to re-offer what their in-memory queue refused.
-- messages_endpoint_created would serve the pending pull only by walking
-- every finished message of the endpoint older than its oldest pending one.
-- Both indexes are partial: a row is in one only while it waits (an insert
-- as pending, a hand back, a failed attempt), so claims and successes, the
-- two state changes of every delivery, add no entry to either.
CREATE INDEX messages_endpoint_pending ON messages (endpoint_id, created_at, id) WHERE state = 'pending';
CREATE INDEX messages_endpoint_failed ON messages (endpoint_id, next_attempt_at) WHERE state = 'failed';

-- +goose Down
DROP INDEX messages_endpoint_failed;
DROP INDEX messages_endpoint_pending;
