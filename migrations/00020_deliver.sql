-- +goose Up
-- Deliver: a claimed message belongs to one deliver process (lease_owner)
-- until lease_until; the sweeper re-offers messages whose lease ran out.
-- retry_base is the attempt count at which the current retry schedule began
-- (a replay starts a fresh schedule without renumbering attempts).
ALTER TABLE messages
    ADD COLUMN lease_owner text,
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN retry_base integer NOT NULL DEFAULT 0;
-- No new indexes: every index on messages costs on each state change (two
-- per delivery); leases and sweeps use messages_state.

-- +goose Down
ALTER TABLE messages DROP COLUMN retry_base, DROP COLUMN lease_until, DROP COLUMN lease_owner;
