package endpoint

// The signing secret: what receivers verify with, and its rotation with
// the old secrets kept signing through the overlap.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/sign"
	"github.com/ethhook/ethhook/tenant"
)

// Secret returns what the endpoint's receiver verifies with: the current
// whsec_ secret, or the whpk_ public key of the current whsk_ private key.
func (s *Service) Secret(ctx context.Context, scope hook.Scope, appID, id string) (string, error) {
	if err := tenant.Visible(ctx, s.pool, scope, appID); err != nil {
		return "", err
	}
	var sealed []byte
	err := s.pool.QueryRow(ctx, `SELECT secret_enc FROM endpoints WHERE id = $1 AND app_id = $2`, id, appID).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", hook.NotFound("endpoint", id)
	}
	if err != nil {
		return "", fmt.Errorf("read secret of endpoint %s: %w", id, err)
	}
	plain, err := s.box.Open(id, sealed)
	if err != nil {
		return "", fmt.Errorf("open secret of endpoint %s: %w", id, err)
	}
	vk, err := sign.VerifyKey(string(plain))
	if err != nil {
		return "", fmt.Errorf("secret of endpoint %s: %w", id, err)
	}
	return vk, nil
}

// MaxOldSecrets bounds the rotated-out secrets that still sign: a rotation
// beyond it drops the one whose overlap ends first.
const MaxOldSecrets = 5

// DefaultOverlap is how long a rotated-out secret keeps signing unless the
// rotation says otherwise (also on a change of signature scheme).
const DefaultOverlap = 24 * time.Hour

// RotateSecret makes a new signing secret (of the endpoint's scheme) and
// returns what its receiver verifies with (see Secret); the current one
// keeps signing (next to the new one) for overlap, and so does every older
// one until its own overlap ends, up to MaxOldSecrets, so receivers can
// switch over at their pace.
func (s *Service) RotateSecret(ctx context.Context, scope hook.Scope, appID, id string, overlap time.Duration) (string, error) {
	if err := tenant.Visible(ctx, s.pool, scope, appID); err != nil {
		return "", err
	}
	if overlap < 0 {
		return "", hook.FieldErrors{"overlap": "must not be negative"}
	}
	var verifyKey string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var scheme string
		err := tx.QueryRow(ctx, `SELECT signature FROM endpoints WHERE id = $1 AND app_id = $2 FOR UPDATE`, id, appID).Scan(&scheme)
		if errors.Is(err, pgx.ErrNoRows) {
			return hook.NotFound("endpoint", id)
		}
		if err != nil {
			return fmt.Errorf("rotate secret of endpoint %s: %w", id, err)
		}
		if verifyKey, err = s.rotate(ctx, tx, id, scheme, overlap); err != nil {
			return err
		}
		return notify(ctx, tx, id)
	})
	if err != nil {
		return "", err
	}
	s.publish(ctx, id)
	return verifyKey, nil
}

// rotate replaces the secret of endpoint id (row locked by the caller)
// with a new one of scheme and returns its verify key. The current secret
// joins the old ones (each keeps its own expiry); expired ones and those
// past the bound (the oldest) go.
func (s *Service) rotate(ctx context.Context, tx pgx.Tx, id, scheme string, overlap time.Duration) (string, error) {
	secret, err := sign.NewSecretFor(scheme)
	if err != nil {
		return "", fmt.Errorf("new signing secret: %w", err)
	}
	verifyKey, err := sign.VerifyKey(secret)
	if err != nil {
		return "", fmt.Errorf("new signing secret: %w", err)
	}
	sealed, err := s.box.Seal(id, []byte(secret))
	if err != nil {
		return "", fmt.Errorf("seal signing secret: %w", err)
	}
	tag, err := tx.Exec(ctx, `INSERT INTO endpoint_old_secrets (endpoint_id, secret_enc, expires_at)
		SELECT id, secret_enc, now() + make_interval(secs => $2) FROM endpoints WHERE id = $1`, id, overlap.Seconds())
	if err != nil {
		return "", fmt.Errorf("rotate secret of endpoint %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return "", hook.NotFound("endpoint", id)
	}
	if _, err := tx.Exec(ctx, `UPDATE endpoints SET secret_enc = $2, updated_at = now() WHERE id = $1`, id, sealed); err != nil {
		return "", fmt.Errorf("rotate secret of endpoint %s: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM endpoint_old_secrets WHERE endpoint_id = $1 AND (expires_at <= now() OR id NOT IN (
			SELECT id FROM endpoint_old_secrets WHERE endpoint_id = $1 AND expires_at > now() ORDER BY expires_at DESC, id DESC LIMIT $2))`,
		id, MaxOldSecrets); err != nil {
		return "", fmt.Errorf("drop expired secrets of endpoint %s: %w", id, err)
	}
	return verifyKey, nil
}
