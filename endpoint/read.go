package endpoint

// Reading endpoints rows: the column list and scanner that other readers
// of the table share, the pipeline's unscoped loads, and the scoped Get and
// List (cursor pages).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/tenant"
)

const cols = `id, app_id, url, description, enabled, disabled_reason, filter, confirmations, batch_max, batch_wait_ms,
	rate_limit, retry_schedule, allow_redirects, ordering, fifo_key, created_at, updated_at, finality, two_phase, ops_events, headers, signature`

// Scan reads one endpoints row selected with the columns of Columns.
func scan(row pgx.Row) (hook.Endpoint, error) {
	var e hook.Endpoint
	var filterJSON []byte
	var sched string
	err := row.Scan(&e.ID, &e.AppID, &e.URL, &e.Description, &e.Enabled, &e.DisabledReason, &filterJSON, &e.Confirmations,
		&e.BatchMax, &e.BatchWaitMS, &e.RateLimit, &sched, &e.AllowRedirects, &e.Ordering, &e.FIFOKey, &e.CreatedAt, &e.UpdatedAt, &e.Stage, &e.TwoPhase,
		&e.OpsEvents, &e.Headers, &e.Signature)
	if err != nil {
		return e, err
	}
	e.Finality = hook.FormatFinality(e.Stage, e.Confirmations)
	if err := json.Unmarshal(filterJSON, &e.Filter); err != nil {
		return e, fmt.Errorf("endpoint %s: decode filter: %w", e.ID, err)
	}
	// Never null in the API: the document says array (an operational
	// endpoint has no chains).
	if e.Filter.Chains == nil {
		e.Filter.Chains = []uint64{}
	}
	e.RetrySchedule = []string{}
	if sched != "" {
		e.RetrySchedule = strings.Split(sched, ",")
	}
	return e, nil
}

// collect reads every row with scan and closes rows (nil when there are none).
func collect(rows pgx.Rows) ([]hook.Endpoint, error) {
	return pgx.AppendRows([]hook.Endpoint(nil), rows, func(r pgx.CollectableRow) (hook.Endpoint, error) { return scan(r) })
}

// Columns is the column list Scan expects, for other readers of the table.
const Columns = cols

// Scan reads a row selected with Columns.
func Scan(row pgx.Row) (hook.Endpoint, error) { return scan(row) }

// LoadEnabled returns every enabled endpoint (process builds its index
// from it). No scope: it is for the pipeline, not for tenants.
func LoadEnabled(ctx context.Context, pool *pgxpool.Pool) ([]hook.Endpoint, error) {
	rows, err := pool.Query(ctx, `SELECT `+cols+` FROM endpoints WHERE enabled`)
	if err != nil {
		return nil, fmt.Errorf("load enabled endpoints: %w", err)
	}
	out, err := collect(rows)
	if err != nil {
		return nil, fmt.Errorf("load enabled endpoints: %w", err)
	}
	return out, nil
}

// LoadOne returns one endpoint by id regardless of scope, or hook.ErrNotFound.
func LoadOne(ctx context.Context, pool *pgxpool.Pool, id string) (hook.Endpoint, error) {
	e, err := scan(pool.QueryRow(ctx, `SELECT `+cols+` FROM endpoints WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return e, hook.NotFound("endpoint", id)
	}
	if err != nil {
		return e, fmt.Errorf("load endpoint %s: %w", id, err)
	}
	return e, nil
}

// Get returns one endpoint of the application.
func (s *Service) Get(ctx context.Context, scope hook.Scope, appID, id string) (hook.Endpoint, error) {
	if err := tenant.Visible(ctx, s.pool, scope, appID); err != nil {
		return hook.Endpoint{}, err
	}
	e, err := scan(s.pool.QueryRow(ctx, `SELECT `+cols+` FROM endpoints WHERE id = $1 AND app_id = $2`, id, appID))
	if errors.Is(err, pgx.ErrNoRows) {
		return e, hook.NotFound("endpoint", id)
	}
	if err != nil {
		return e, fmt.Errorf("get endpoint %s: %w", id, err)
	}
	if e.History, err = LoadHistory(ctx, s.pool, e.ID); err != nil {
		return e, err
	}
	return e, nil
}

// List returns the application's endpoints oldest first, limit at a time
// (0 = DefaultLimit); the returned cursor fetches the next page and is
// empty on the last.
func (s *Service) List(ctx context.Context, scope hook.Scope, appID, cursor string, limit int) ([]hook.Endpoint, string, error) {
	if err := tenant.Visible(ctx, s.pool, scope, appID); err != nil {
		return nil, "", err
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 0 || limit > MaxLimit {
		return nil, "", hook.FieldErrors{"limit": fmt.Sprintf("must be 1..%d", MaxLimit)}
	}
	after := ""
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || !strings.HasPrefix(string(b), "ep_") {
			return nil, "", hook.FieldErrors{"cursor": "not a cursor returned by a previous page"}
		}
		after = string(b)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+cols+` FROM endpoints WHERE app_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
		appID, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list endpoints of %s: %w", appID, err)
	}
	out, err := collect(rows)
	if err != nil {
		return nil, "", fmt.Errorf("list endpoints of %s: %w", appID, err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte(out[limit-1].ID))
	}
	return out, next, nil
}
