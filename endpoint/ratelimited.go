package endpoint

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/tenant"
)

// The rate-limit backlogs deliver records (hook.RateLimited in the hash
// hook.Keys.RateLimited, modules/deliver/ratebacklog.go): read here for the
// API's endpoint health and the web UI.

// RateLimitedNow returns the endpoint's rate-limit backlog episode, if one
// is under way. appID is the endpoint's application (already checked
// against the caller's scope): an entry of another application is none.
func RateLimitedNow(ctx context.Context, rdb rueidis.Client, keys hook.Keys, appID, endpointID string) (*hook.RateLimited, error) {
	if rdb == nil {
		return nil, nil
	}
	v, err := rdb.Do(ctx, rdb.B().Hget().Key(keys.RateLimited()).Field(endpointID).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read rate-limit backlog of %s: %w", endpointID, err)
	}
	r, err := hook.ParseRateLimited(v)
	if err != nil || r.AppID != appID {
		return nil, nil // unreadable or not this endpoint's: nothing to show
	}
	return &r, nil
}

// HeldBack is an endpoint held back by its rate limit, for the dashboard.
type HeldBack struct {
	hook.RateLimited
	EndpointID, AppName, URL string
}

// RateLimitedIn lists up to limit endpoints held back by their rate limit
// in the applications scope sees, largest backlog first.
func RateLimitedIn(ctx context.Context, pool *pgxpool.Pool, rdb rueidis.Client, keys hook.Keys, scope hook.Scope, limit int) ([]HeldBack, error) {
	if rdb == nil {
		return nil, nil
	}
	all, err := rdb.Do(ctx, rdb.B().Hgetall().Key(keys.RateLimited()).Build()).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("read rate-limit backlogs: %w", err)
	}
	if len(all) == 0 {
		return nil, nil
	}
	byID := map[string]hook.RateLimited{}
	ids := make([]string, 0, len(all))
	for id, v := range all {
		if r, err := hook.ParseRateLimited(v); err == nil {
			byID[id] = r
			ids = append(ids, id)
		}
	}
	args := []any{ids}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	cond := tenant.ScopeCond(scope, "e.app_id", arg)
	rows, err := pool.Query(ctx, `SELECT e.id, e.app_id, a.name, e.url FROM endpoints e JOIN applications a ON a.id = e.app_id
		WHERE e.id = ANY($1) AND `+cond, args...)
	if err != nil {
		return nil, fmt.Errorf("endpoints held back by their rate limit: %w", err)
	}
	defer rows.Close()
	var out []HeldBack
	for rows.Next() {
		var h HeldBack
		var app string
		if err := rows.Scan(&h.EndpointID, &app, &h.AppName, &h.URL); err != nil {
			return nil, fmt.Errorf("endpoints held back by their rate limit: %w", err)
		}
		if h.RateLimited = byID[h.EndpointID]; h.AppID == app {
			out = append(out, h)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("endpoints held back by their rate limit: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Backlog > out[j].Backlog })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
