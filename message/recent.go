package message

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/tenant"
)

// Minute is one minute of delivery attempts: how many, how many 2xx.
type Minute struct {
	At        time.Time
	Total     int64
	Succeeded int64
}

// AttemptsPerMinute counts the delivery attempts of the applications scope
// sees, per minute since since (the web UI's dashboard chart), to
// endpoints that still exist: a deleted endpoint's history is gone for
// readers at once, as its messages are (msgstate.FromLive), though
// retention.PurgeDeleted deletes it later.
func AttemptsPerMinute(ctx context.Context, pool *pgxpool.Pool, scope hook.Scope, since time.Time) ([]Minute, error) {
	var q query
	q.where("h.created_at > %s", since)
	q.scope(scope, "h.app_id")
	rows, err := pool.Query(ctx, `SELECT date_trunc('minute', h.created_at), count(*),
			count(*) FILTER (WHERE h.status_code BETWEEN 200 AND 299)
		FROM delivery_history h JOIN endpoints e ON e.id = h.endpoint_id AND e.app_id = h.app_id
		WHERE `+q.sql()+` GROUP BY 1 ORDER BY 1`, q.args...)
	if err != nil {
		return nil, fmt.Errorf("deliveries per minute: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Minute, error) {
		var m Minute
		err := r.Scan(&m.At, &m.Total, &m.Succeeded)
		return m, err
	})
}

// Failure is a failed or dead message with its endpoint's URL and its
// application's name.
type Failure struct {
	AppID, AppName, EndpointID, URL, MessageID, State, Error string
	Status                                                   *int
	At                                                       time.Time
}

// RecentFailures lists the last limit failed or dead messages of the
// applications scope sees, newest first.
func RecentFailures(ctx context.Context, pool *pgxpool.Pool, scope hook.Scope, limit int) ([]Failure, error) {
	sql, args := recentFailuresQuery(scope, limit)
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("recent failures: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Failure, error) {
		var f Failure
		err := r.Scan(&f.AppID, &f.AppName, &f.EndpointID, &f.URL, &f.MessageID, &f.State, &f.Error, &f.Status, &f.At)
		return f, err
	})
}

// recentFailuresQuery is RecentFailures' statement: read newest first from
// message_states_failures (migration 00088), so the dashboard never sorts
// every failure kept. message_states' ids are in the "C" collation and
// those of endpoints and applications in the database's: the joins name the
// collation of their keys so each failure's endpoint and application are
// looked up by primary key, not read whole for ten rows.
func recentFailuresQuery(scope hook.Scope, limit int) (string, []any) {
	var q query
	q.where("s.state IN (%s, %s)", hook.StateFailed, hook.StateDead)
	q.scope(scope, "s.app_id")
	sql := `SELECT s.app_id, a.name, s.endpoint_id, e.url, s.id, s.state, s.last_error, s.last_status, s.updated_at
		FROM message_states s JOIN endpoints e ON e.id = s.endpoint_id COLLATE "default" AND e.app_id = s.app_id
		JOIN applications a ON a.id = s.app_id COLLATE "default"
		WHERE ` + q.sql() + ` ORDER BY s.updated_at DESC LIMIT ` + q.arg(limit)
	return sql, q.args
}

// GetIn is Get for a message of application appID, as the admin API's and
// the web UI's message pages ask: another application's message is not
// found, even for an admin who may see both.
func (s *Service) GetIn(ctx context.Context, sc hook.Scope, appID, id string) (Message, []Attempt, error) {
	if err := tenant.Visible(ctx, s.pool, sc, appID); err != nil {
		return Message{}, nil, err
	}
	m, atts, err := s.Get(ctx, sc, id)
	if err != nil {
		return Message{}, nil, err
	}
	if m.AppID != appID {
		return Message{}, nil, hook.NotFound("message", id)
	}
	return m, atts, nil
}
