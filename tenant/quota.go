package tenant

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// QuotaCacheTTL is how long QuotaExceeded trusts an answer. Deliveries in
// that window may overshoot the quota a little; nothing is lost either way.
const QuotaCacheTTL = 5 * time.Second

type quotaEntry struct {
	exceeded bool
	month    time.Time
	at       time.Time
}

type quotaCache struct {
	mu sync.Mutex
	m  map[string]quotaEntry
}

func newQuotaCache() *quotaCache { return &quotaCache{m: map[string]quotaEntry{}} }

func (c *quotaCache) get(appID string, now time.Time) (bool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[appID]
	if !ok || now.Sub(e.at) > QuotaCacheTTL || !e.month.Equal(monthStart(now)) {
		return false, false
	}
	return e.exceeded, true
}

func (c *quotaCache) put(appID string, exceeded bool, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) > 100_000 { // bound memory; entries are cheap to recompute
		c.m = map[string]quotaEntry{}
	}
	c.m[appID] = quotaEntry{exceeded: exceeded, month: monthStart(now), at: now}
}

func (c *quotaCache) forget(appID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, appID)
}

// QuotaStatus is an application's standing against its plan this month.
type QuotaStatus struct {
	AppID      string    `json:"app_id"`
	PlanID     string    `json:"plan_id"`
	Month      string    `json:"month"`         // YYYY-MM (UTC)
	Deliveries int64     `json:"deliveries"`    // successful deliveries this month
	Quota      int64     `json:"monthly_quota"` // 0 = unlimited
	Exceeded   bool      `json:"exceeded"`
	Held       int64     `json:"held"` // messages waiting in state quota_exceeded
	ResetsAt   time.Time `json:"resets_at"`
}

// quotaNow reads the application's quota standing (no scope check: callers
// check visibility).
func (s *Store) quotaNow(ctx context.Context, q Querier, appID string, now time.Time) (QuotaStatus, error) {
	m := monthStart(now)
	st := QuotaStatus{AppID: appID, Month: m.Format("2006-01"), ResetsAt: m.AddDate(0, 1, 0)}
	err := q.QueryRow(ctx, `SELECT a.plan_id, p.monthly_quota,
			COALESCE((SELECT u.deliveries FROM usage u WHERE u.app_id = a.id AND u.month = $2), 0)
		FROM applications a JOIN plans p ON p.id = a.plan_id WHERE a.id = $1`, appID, m).
		Scan(&st.PlanID, &st.Quota, &st.Deliveries)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, fmt.Errorf("quota of application %s: no such application", appID)
	}
	if err != nil {
		return st, fmt.Errorf("quota of application %s: %w", appID, err)
	}
	st.Exceeded = st.Quota > 0 && st.Deliveries >= st.Quota
	return st, nil
}

// QuotaExceeded reports whether appID has used its plan's monthly delivery
// quota (a quota of 0 is unlimited). Process calls it when it creates a
// message and stores the message as hook.StateQuotaExceeded when true.
// Answers are cached for QuotaCacheTTL.
func (s *Store) QuotaExceeded(ctx context.Context, appID string) (bool, error) {
	now := time.Now()
	if v, ok := s.quota.get(appID, now); ok {
		return v, nil
	}
	st, err := s.quotaNow(ctx, s.pool, appID, now)
	if err != nil {
		return false, err
	}
	s.quota.put(appID, st.Exceeded, now)
	return st.Exceeded, nil
}

func (c *quotaCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = map[string]quotaEntry{}
}
