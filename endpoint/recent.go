package endpoint

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/tenant"
)

// Disabled is a disabled endpoint with its application's name and why.
type Disabled struct {
	AppID, AppName, EndpointID, URL, Reason string
	At                                      time.Time // when it last changed
}

// RecentlyDisabled lists the last limit endpoints disabled in the
// applications scope sees, newest first (the web UI's dashboard).
func RecentlyDisabled(ctx context.Context, pool *pgxpool.Pool, scope hook.Scope, limit int) ([]Disabled, error) {
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	cond := tenant.ScopeCond(scope, "e.app_id", arg)
	rows, err := pool.Query(ctx, `SELECT e.app_id, a.name, e.id, e.url, e.disabled_reason, e.updated_at
		FROM endpoints e JOIN applications a ON a.id = e.app_id
		WHERE NOT e.enabled AND `+cond+` ORDER BY e.updated_at DESC LIMIT `+arg(limit), args...)
	if err != nil {
		return nil, fmt.Errorf("disabled endpoints: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Disabled, error) {
		var d Disabled
		err := r.Scan(&d.AppID, &d.AppName, &d.EndpointID, &d.URL, &d.Reason, &d.At)
		return d, err
	})
}
