-- +goose Up
-- Fewer index entries per webhook (issue 13). Every delivery writes a
-- message three times (the insert as pending, the claim, the result), and
-- the two updates are not HOT (they change state, which index predicates
-- read), so each writes a new entry into every index whose predicate the
-- new row meets.
--
-- messages_state (state, updated_at) over the waiting states and
-- messages_endpoint_pending (endpoint_id, created_at, id) over pending
-- ones both took an entry at the insert. One index serves what both did:
-- messages_waiting (endpoint_id, state, created_at, id) over pending,
-- delivering and failed. A lane's pull of pending messages reads it as it
-- read messages_endpoint_pending (endpoint, 'pending', oldest first);
-- whatever reads the waiting messages of every endpoint (the sweeper, the
-- state and per-endpoint metrics, hand back and reclaim by lease owner,
-- retention's in-flight check of a partition) reads its entries, as many
-- as messages_state had, and a condition `state IN ('pending', 'delivering',
-- 'failed')` still implies its predicate. updated_at and lease_until stay
-- out of it, so a lease renewal (which only changes lease_until) can still
-- be HOT. Due retries keep messages_endpoint_failed (by next_attempt_at).
-- quota_exceeded messages, which messages_state also held, get a partial
-- index of their own by application, oldest first, as the quota release
-- reads them; nothing on the delivery path writes it.
--
-- The insert writes one index entry fewer; the claim and the result as many.
DROP INDEX messages_state;
DROP INDEX messages_endpoint_pending;
CREATE INDEX messages_waiting ON messages (endpoint_id, state, created_at, id) WHERE state IN ('pending', 'delivering', 'failed');
CREATE INDEX messages_held ON messages (app_id, created_at, id) WHERE state = 'quota_exceeded';

-- messages_tx serves one query, the search by transaction hash (equality),
-- and took three entries of a 66-byte key per webhook. A hash index keeps
-- a 4-byte hash code per entry and compares no text.
DROP INDEX messages_tx;
CREATE INDEX messages_tx ON messages USING hash (tx_hash);

-- +goose Down
DROP INDEX messages_tx;
CREATE INDEX messages_tx ON messages (tx_hash);
DROP INDEX messages_held;
DROP INDEX messages_waiting;
CREATE INDEX messages_endpoint_pending ON messages (endpoint_id, created_at, id) WHERE state = 'pending';
CREATE INDEX messages_state ON messages (state, updated_at) WHERE state IN ('pending', 'delivering', 'failed', 'quota_exceeded');
