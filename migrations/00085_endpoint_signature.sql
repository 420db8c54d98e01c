-- +goose Up
-- The signature scheme of an endpoint's new secrets: hmac (Standard
-- Webhooks v1, whsec_ secret, the default) or ed25519 (v1a, a whsk_
-- private key sealed in secret_enc; receivers verify with its whpk_
-- public key). Each stored secret (current or in endpoint_old_secrets)
-- carries its own prefix, so a rotation between schemes signs with both.
ALTER TABLE endpoints ADD COLUMN signature text NOT NULL DEFAULT 'hmac'
    CHECK (signature IN ('hmac', 'ed25519'));

-- +goose Down
ALTER TABLE endpoints DROP COLUMN signature;
