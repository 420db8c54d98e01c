package tenant

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/streams"
	"github.com/ethhook/ethhook/msgstate"
)

// UsageMonth is one month of an application's metered usage.
type UsageMonth struct {
	Month      string `json:"month"`      // YYYY-MM (UTC)
	Deliveries int64  `json:"deliveries"` // successful deliveries
}

// UsageFilter bounds UsageHistory (months as YYYY-MM, inclusive; empty = open).
type UsageFilter struct {
	From string
	To   string
}

// ParseMonth parses YYYY-MM into the first instant of that month (UTC).
func ParseMonth(field, s string) (time.Time, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil {
		return time.Time{}, invalid(field, "must be a month as YYYY-MM")
	}
	return t, nil
}

// Usage returns appID's standing this month: deliveries, quota, whether it
// is exceeded and how many messages are held.
func (s *Store) Usage(ctx context.Context, scope hook.Scope, appID string) (QuotaStatus, error) {
	if err := Visible(ctx, s.pool, scope, appID); err != nil {
		return QuotaStatus{}, err
	}
	st, err := s.quotaNow(ctx, s.pool, appID, time.Now())
	if err != nil {
		return QuotaStatus{}, err
	}
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM message_states WHERE app_id = $1 AND state = $2`,
		appID, hook.StateQuotaExceeded).Scan(&st.Held); err != nil {
		return QuotaStatus{}, fmt.Errorf("count held messages of %s: %w", appID, err)
	}
	return st, nil
}

// UsageHistory lists appID's months with usage, newest first.
func (s *Store) UsageHistory(ctx context.Context, scope hook.Scope, appID string, f UsageFilter, cursor string, limit int) ([]UsageMonth, string, error) {
	if err := Visible(ctx, s.pool, scope, appID); err != nil {
		return nil, "", err
	}
	l, err := newList(cursor, limit)
	if err != nil {
		return nil, "", err
	}
	l.where("app_id = " + l.arg(appID))
	if l.after != "" {
		t, err := time.Parse("2006-01", l.after)
		if err != nil {
			return nil, "", invalid("cursor", "is not a cursor returned by this API")
		}
		l.where("month < " + l.arg(t))
	}
	if f.From != "" {
		t, err := ParseMonth("from", f.From)
		if err != nil {
			return nil, "", err
		}
		l.where("month >= " + l.arg(t))
	}
	if f.To != "" {
		t, err := ParseMonth("to", f.To)
		if err != nil {
			return nil, "", err
		}
		l.where("month <= " + l.arg(t))
	}
	q := `SELECT month, deliveries FROM usage WHERE ` + l.sql() + ` ORDER BY month DESC LIMIT ` + l.limitArg()
	return queryPage(ctx, s.pool, "usage history of "+appID, q, l.args, l.limit, func(r pgx.Row) (UsageMonth, error) {
		var m time.Time
		var u UsageMonth
		err := r.Scan(&m, &u.Deliveries)
		u.Month = m.Format("2006-01")
		return u, err
	}, func(u UsageMonth) string { return u.Month })
}

// ReleaseHeld moves up to max of appID's quota_exceeded messages back to
// pending, oldest first, as far as the quota left this month allows
// (counting messages already on their way), and offers their delivery jobs
// (hook.Job, streams.Offer). A crash between the commit and the offer
// loses nothing: deliver sweeps Postgres for
// pending messages no job claimed. It returns how many it released.
func (s *Store) ReleaseHeld(ctx context.Context, rdb rueidis.Client, keys hook.Keys, appID string, max int) (int, error) {
	var jobs []hook.Job
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Serialise releases of one application across processes.
		var locked string
		if err := tx.QueryRow(ctx, `SELECT id FROM applications WHERE id = $1 FOR UPDATE`, appID).Scan(&locked); err != nil {
			return err
		}
		st, err := s.quotaNow(ctx, tx, appID, time.Now())
		if err != nil {
			return err
		}
		if st.Exceeded {
			return nil
		}
		n := int64(max)
		if left := st.left(); left >= 0 {
			n = min(n, left)
		}
		if n <= 0 {
			return nil
		}
		jobs, err = msgstate.Release(ctx, tx, appID, n)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("release held messages of %s: %w", appID, err)
	}
	if len(jobs) == 0 {
		return 0, nil
	}
	s.quota.forget(appID)
	if err := streams.Offer(ctx, rdb, keys, jobs...); err != nil {
		return len(jobs), fmt.Errorf("queue released messages of %s (deliver's sweep will pick them up): %w", appID, err)
	}
	return len(jobs), nil
}

// ReleaseAll runs ReleaseHeld (batch messages at a time) for every
// application that has held messages, and returns how many it released.
func (s *Store) ReleaseAll(ctx context.Context, rdb rueidis.Client, keys hook.Keys, batch int) (int, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT app_id FROM message_states WHERE state = $1`, hook.StateQuotaExceeded)
	if err != nil {
		return 0, fmt.Errorf("find applications with held messages: %w", err)
	}
	apps, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("find applications with held messages: %w", err)
	}
	total := 0
	for _, app := range apps {
		n, err := s.ReleaseHeld(ctx, rdb, keys, app, batch)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// HeldMessages counts messages in state quota_exceeded, for metrics.
func (s *Store) HeldMessages(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM message_states WHERE state = $1`, hook.StateQuotaExceeded).Scan(&n); err != nil {
		return 0, fmt.Errorf("count held messages: %w", err)
	}
	return n, nil
}

// AppsOverQuota counts applications at or over their plan's quota this
// month, for metrics.
func (s *Store) AppsOverQuota(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM usage u JOIN applications a ON a.id = u.app_id JOIN plans p ON p.id = a.plan_id
		WHERE u.month = $1 AND p.monthly_quota > 0 AND u.deliveries >= p.monthly_quota`, monthStart(time.Now())).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count applications over quota: %w", err)
	}
	return n, nil
}

// NearQuotaFraction is the share of a monthly quota from which an
// application counts as near it (ethhook_quota_near_applications).
const NearQuotaFraction = 0.8

// AppsNearQuota counts applications at or over NearQuotaFraction of their
// plan's quota this month and still under it, for metrics.
func (s *Store) AppsNearQuota(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM usage u JOIN applications a ON a.id = u.app_id JOIN plans p ON p.id = a.plan_id
		WHERE u.month = $1 AND p.monthly_quota > 0 AND u.deliveries >= $2 * p.monthly_quota AND u.deliveries < p.monthly_quota`,
		monthStart(time.Now()), NearQuotaFraction).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count applications near quota: %w", err)
	}
	return n, nil
}

// QuotaReached is an application that reached its plan's quota this month.
type QuotaReached struct {
	AppID      string
	AppName    string
	PlanID     string
	Deliveries int64
	Quota      int64
}

// NoteQuotaReached returns the applications that reached their quota this
// month (deliveries at the quota, or messages held for it) and were not
// returned before this month: each application once a month, across every
// process, because the moment is stored in usage.quota_reached_at. The
// caller logs them, so the operator hears of it once, not per message.
func (s *Store) NoteQuotaReached(ctx context.Context) ([]QuotaReached, error) {
	m := monthStart(time.Now())
	rows, err := s.pool.Query(ctx, `WITH reached AS (
			SELECT a.id AS app_id, COALESCE(u.deliveries, 0) AS deliveries
			FROM applications a JOIN plans p ON p.id = a.plan_id
			LEFT JOIN usage u ON u.app_id = a.id AND u.month = $1
			WHERE p.monthly_quota > 0 AND u.quota_reached_at IS NULL
				AND (COALESCE(u.deliveries, 0) >= p.monthly_quota
					OR a.id IN (SELECT app_id FROM message_states WHERE state = $2))
		), noted AS (
			INSERT INTO usage AS u (app_id, month, deliveries, quota_reached_at)
			SELECT app_id, $1, 0, now() FROM reached
			ON CONFLICT (app_id, month) DO UPDATE SET quota_reached_at = EXCLUDED.quota_reached_at
				WHERE u.quota_reached_at IS NULL
			RETURNING u.app_id, u.deliveries
		)
		SELECT n.app_id, a.name, p.id, n.deliveries, p.monthly_quota
		FROM noted n JOIN applications a ON a.id = n.app_id JOIN plans p ON p.id = a.plan_id
		ORDER BY n.app_id`, m, hook.StateQuotaExceeded)
	if err != nil {
		return nil, fmt.Errorf("note applications at quota: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (QuotaReached, error) {
		var q QuotaReached
		return q, r.Scan(&q.AppID, &q.AppName, &q.PlanID, &q.Deliveries, &q.Quota)
	})
	if err != nil {
		return nil, fmt.Errorf("note applications at quota: %w", err)
	}
	return out, nil
}
