-- +goose Up
-- Every rotated-out signing secret keeps signing until its own overlap ends
-- (up to endpoint.MaxOldSecrets at once), instead of a second rotation
-- ending the first one's overlap. Deliver signs with the current secret
-- and every unexpired row here (one v1, signature each).
CREATE TABLE endpoint_old_secrets (
    id          bigserial   PRIMARY KEY,
    endpoint_id text        NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    secret_enc  bytea       NOT NULL,          -- sealed like endpoints.secret_enc
    expires_at  timestamptz NOT NULL
);
CREATE INDEX endpoint_old_secrets_endpoint ON endpoint_old_secrets (endpoint_id, expires_at);
INSERT INTO endpoint_old_secrets (endpoint_id, secret_enc, expires_at)
SELECT id, old_secret_enc, old_secret_expires_at FROM endpoints
WHERE old_secret_enc IS NOT NULL AND old_secret_expires_at > now();
UPDATE endpoints SET old_secret_enc = NULL, old_secret_expires_at = NULL WHERE old_secret_enc IS NOT NULL;

-- +goose Down
UPDATE endpoints e SET old_secret_enc = o.secret_enc, old_secret_expires_at = o.expires_at
FROM (SELECT DISTINCT ON (endpoint_id) endpoint_id, secret_enc, expires_at FROM endpoint_old_secrets
      ORDER BY endpoint_id, expires_at DESC) o
WHERE o.endpoint_id = e.id;
DROP TABLE endpoint_old_secrets;
