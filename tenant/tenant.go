// Package tenant owns who may see what: applications, users and their
// memberships, application API keys, plans, usage and quota status. Every
// method takes the caller's hook.Scope and filters by it; anything outside
// the scope is hook.ErrNotFound, indistinguishable from missing.
package tenant

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"

	"github.com/ethhook/ethhook/hook"
)

// ErrKeyCannotManageKeys is returned when an API key tries to create or
// revoke API keys: only users may, so a leaked key cannot mint successors
// that outlive its revocation.
var ErrKeyCannotManageKeys = hook.Forbidden("API keys cannot create or revoke API keys; log in as a user")

// The other refusals callers (the admin API's answer) tell apart; each is
// a hook.ErrForbidden, returned wrapped with what was refused.
var (
	ErrAdminRequired       = hook.Forbidden("admin role required")
	ErrKeyCannotManageApps = hook.Forbidden("API keys cannot create or delete applications; log in as a user")
	ErrPlanAdminOnly       = hook.Forbidden("only an admin can change an application's plan")
)

// invalid is hook.FieldErrors for one field.
func invalid(field, msg string) error { return hook.Invalid(field, msg) }

// Querier is what Visible needs: a pool, a connection or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Store is the tenant service over Postgres.
type Store struct {
	pool    *pgxpool.Pool
	quota   *quotaCache
	hashes  *hashGate
	maxApps int // applications a member may create; 0 = no cap
	// defaultPlan is the plan of new applications that name none; empty
	// means DefaultPlanID.
	defaultPlan string
}

// New returns a Store on pool; it computes at most DefaultPasswordHashes
// password hashes at once (see LimitPasswordHashing).
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, quota: newQuotaCache(), hashes: newHashGate(DefaultPasswordHashes, defaultHashWait)}
}

// Pool is the pool the store uses.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Visible returns nil when scope may see application appID, and
// hook.ErrNotFound when the application does not exist or is outside the
// scope (the two are indistinguishable on purpose).
func Visible(ctx context.Context, q Querier, scope hook.Scope, appID string) error {
	if appID == "" {
		return hook.NotFound("application", `""`)
	}
	var w query
	w.where("a.id = " + w.arg(appID))
	w.scope(scope, "a.id")
	var ok bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM applications a WHERE `+w.sql()+`)`, w.args...).Scan(&ok); err != nil {
		return fmt.Errorf("check visibility of application %s: %w", appID, err)
	}
	if !ok {
		return hook.NotFound("application", appID)
	}
	return nil
}

// Visible is the package function Visible on the store's pool.
func (s *Store) Visible(ctx context.Context, scope hook.Scope, appID string) error {
	return Visible(ctx, s.pool, scope, appID)
}

// NewID returns a fresh prefixed ULID such as "app_01J...": ids sort by
// creation time and say what they name.
func NewID(prefix string) string {
	return prefix + "_" + ulid.Make().String()
}

// randomBytes returns n bytes from crypto/rand.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // crypto/rand does not fail on supported platforms
	}
	return b
}

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(n))
}

// Page bounds for every list.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// clampLimit validates a page size: 0 means DefaultLimit.
func clampLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultLimit, nil
	case limit < 0 || limit > MaxLimit:
		return 0, invalid("limit", fmt.Sprintf("must be between 1 and %d", MaxLimit))
	}
	return limit, nil
}

// Cursors are opaque to clients: base64url of the last id of the page.
func encodeCursor(id string) string {
	if id == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(id))
}

func decodeCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) == 0 || len(b) > 100 {
		return "", invalid("cursor", "is not a cursor returned by this API")
	}
	return string(b), nil
}

// queryPage runs q, which must select up to limit+1 rows in id order, and
// returns the first limit of them with the cursor of the next page ("" on
// the last page). what names the listing in errors ("list plans").
func queryPage[T any](ctx context.Context, pool *pgxpool.Pool, what, q string, args []any, limit int,
	scan func(pgx.Row) (T, error), id func(T) string) ([]T, string, error) {
	rows, err := pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", what, err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encodeCursor(id(out[limit-1]))
	}
	return out, next, nil
}

// isUnique reports a unique-constraint violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// isFK reports a foreign-key violation.
func isFK(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// monthStart is the first instant of t's calendar month in UTC.
func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}
