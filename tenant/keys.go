package tenant

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/ethhook/ethhook/hook"
)

// KeyPrefix starts every application API key.
const KeyPrefix = "ethk_"

// displayPrefixLen is how much of a key is kept for display ("ethk_AbCdEfGh").
const displayPrefixLen = len(KeyPrefix) + 8

// ErrBadKey is returned by AuthenticateKey for an unknown or revoked key.
var ErrBadKey = errors.New("invalid or revoked API key")

// APIKey is an application API key as listed: the key itself is shown only
// once, by CreateAPIKey.
type APIKey struct {
	ID        string    `json:"id"`
	AppID     string    `json:"app_id"`
	Name      string    `json:"name"`
	Prefix    string    `json:"prefix"`
	CreatedAt time.Time `json:"created_at"`
	// CreatedBy is the user who created the key (empty for keys made
	// before creators were recorded). The key is revoked when that user
	// loses access to the application or is deleted.
	CreatedBy  string     `json:"created_by"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// APIKeyFilter narrows ListAPIKeys.
type APIKeyFilter struct {
	Name    string // case-insensitive substring
	Revoked *bool  // nil: all; true: only revoked; false: only active
}

func hashKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

const keyCols = `k.id, k.app_id, k.name, k.prefix, k.created_at, COALESCE(k.created_by, ''), k.last_used_at, k.revoked_at`

func scanKey(row pgx.Row) (APIKey, error) {
	var k APIKey
	err := row.Scan(&k.ID, &k.AppID, &k.Name, &k.Prefix, &k.CreatedAt, &k.CreatedBy, &k.LastUsedAt, &k.RevokedAt)
	return k, err
}

// CreateAPIKey makes a key for application appID and returns it with the
// secret key string, which is not stored and cannot be shown again. Only
// users (and the operator) create keys: an API key gets
// ErrKeyCannotManageKeys. The key records its creator.
func (s *Store) CreateAPIKey(ctx context.Context, scope hook.Scope, appID, name string) (APIKey, string, error) {
	if err := Visible(ctx, s.pool, scope, appID); err != nil {
		return APIKey{}, "", err
	}
	if scope.AppID != "" {
		return APIKey{}, "", ErrKeyCannotManageKeys
	}
	var creator *string
	if scope.UserID != "" {
		creator = &scope.UserID
	}
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > 200 {
		return APIKey{}, "", invalid("name", "must be at most 200 characters")
	}
	secret := KeyPrefix + randomToken(32)
	k, err := scanKey(s.pool.QueryRow(ctx, `INSERT INTO api_keys AS k (id, app_id, name, prefix, hash, created_by) VALUES ($1, $2, $3, $4, $5, $6)
		RETURNING `+keyCols, NewID("key"), appID, name, secret[:displayPrefixLen], hashKey(secret), creator))
	if isFK(err) {
		return APIKey{}, "", hook.NotFound("application", appID)
	}
	if err != nil {
		return APIKey{}, "", fmt.Errorf("create api key for %s: %w", appID, err)
	}
	return k, secret, nil
}

// ListAPIKeys lists an application's keys in creation order.
func (s *Store) ListAPIKeys(ctx context.Context, scope hook.Scope, appID string, f APIKeyFilter, cursor string, limit int) ([]APIKey, string, error) {
	if err := Visible(ctx, s.pool, scope, appID); err != nil {
		return nil, "", err
	}
	l, err := newList(cursor, limit)
	if err != nil {
		return nil, "", err
	}
	l.where("k.app_id = " + l.arg(appID))
	l.afterID("k.id")
	l.contains("k.name", f.Name)
	if f.Revoked != nil {
		if *f.Revoked {
			l.where("k.revoked_at IS NOT NULL")
		} else {
			l.where("k.revoked_at IS NULL")
		}
	}
	q := `SELECT ` + keyCols + ` FROM api_keys k WHERE ` + l.sql() + ` ORDER BY k.id LIMIT ` + l.limitArg()
	return queryPage(ctx, s.pool, "list api keys of "+appID, q, l.args, l.limit, scanKey, func(k APIKey) string { return k.ID })
}

// GetAPIKey returns one key of an application.
func (s *Store) GetAPIKey(ctx context.Context, scope hook.Scope, appID, keyID string) (APIKey, error) {
	if err := Visible(ctx, s.pool, scope, appID); err != nil {
		return APIKey{}, err
	}
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyCols+` FROM api_keys k WHERE k.id = $1 AND k.app_id = $2`, keyID, appID))
	return oneRow(k, err, "get api key", "api key", keyID)
}

// RevokeAPIKey revokes a key at once; revoking twice is harmless. Like
// creating, revoking is for users only (ErrKeyCannotManageKeys).
func (s *Store) RevokeAPIKey(ctx context.Context, scope hook.Scope, appID, keyID string) error {
	if err := Visible(ctx, s.pool, scope, appID); err != nil {
		return err
	}
	if scope.AppID != "" {
		return ErrKeyCannotManageKeys
	}
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 AND app_id = $2`, keyID, appID)
	return oneChanged(tag, err, "revoke api key", "api key", keyID)
}

// AuthenticateKey resolves a presented key string to its (active) key, and
// records its use: last_used_at moves at most once a minute, so a busy key
// does not write on every request.
func (s *Store) AuthenticateKey(ctx context.Context, key string) (APIKey, error) {
	if !strings.HasPrefix(key, KeyPrefix) || len(key) < displayPrefixLen || len(key) > 200 {
		return APIKey{}, ErrBadKey
	}
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyCols+` FROM api_keys k WHERE k.hash = $1 AND k.revoked_at IS NULL`, hashKey(key)))
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, ErrBadKey
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("authenticate api key: %w", err)
	}
	if k.LastUsedAt == nil || time.Since(*k.LastUsedAt) >= time.Minute {
		var at time.Time
		err := s.pool.QueryRow(ctx, `UPDATE api_keys SET last_used_at = now()
			WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= now() - interval '1 minute') RETURNING last_used_at`, k.ID).Scan(&at)
		if err == nil {
			k.LastUsedAt = &at
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return APIKey{}, fmt.Errorf("record use of api key %s: %w", k.ID, err)
		}
	}
	return k, nil
}
