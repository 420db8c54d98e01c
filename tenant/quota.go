package tenant

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/singleflight"

	"github.com/ethhook/ethhook/hook"
)

// The monthly quota is a cap on messages admitted for delivery, not only on
// deliveries made: QuotaExceeded counts the deliveries of the month plus
// the messages still on their way (pending, delivering, failed and due for
// a retry), so a backlog cannot run past the quota once it drains. (It
// once counted deliveries only: a demo app with a backlog of ~2,600 pending
// messages reached 12,848 deliveries of a 10,000 quota.)
//
// How far it can overshoot: an answer "under quota" is cached for
// QuotaCacheTTL only while more than quotaCacheHeadroom messages are left;
// closer to the quota every check reads Postgres. Process checks once per
// application per batch of stream entries, so the overshoot is at most the
// messages one such batch creates for the application, times the process
// replicas checking at the same moment. Messages that end dead free their
// share of the quota again (held messages are then released).

// QuotaCacheTTL is how long QuotaExceeded trusts an answer.
const QuotaCacheTTL = 5 * time.Second

// quotaCacheHeadroom is the number of messages left below which an "under
// quota" answer is not cached, so the last ones are counted exactly.
const quotaCacheHeadroom = 1000

type quotaEntry struct {
	exceeded bool
	month    time.Time
	at       time.Time
}

type quotaCache struct {
	mu     sync.Mutex
	m      map[string]quotaEntry
	flight singleflight.Group // one count per application at a time
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
	InFlight   int64     `json:"in_flight"`     // admitted, not yet delivered or dead (counted only under a quota)
	Exceeded   bool      `json:"exceeded"`      // deliveries + in_flight reached the quota: new messages are held
	Held       int64     `json:"held"`          // messages waiting in state quota_exceeded
	ResetsAt   time.Time `json:"resets_at"`
	// Storage by plan (max_stored, 0 = unlimited): the application's stored
	// messages plus their delivery attempts. At the limit new messages are
	// held (quota_exceeded) as at the monthly quota, so an endpoint that
	// always fails cannot fill the disk; retention frees the space.
	MaxStored   int64 `json:"max_stored"`
	StoredRows  int64 `json:"stored_rows"`  // counted only under a limit
	StorageFull bool  `json:"storage_full"` // stored_rows reached max_stored: new messages are held
}

// quotaNow reads the application's quota standing (no scope check: callers
// check visibility).
func (s *Store) quotaNow(ctx context.Context, q Querier, appID string, now time.Time) (QuotaStatus, error) {
	m := monthStart(now)
	st := QuotaStatus{AppID: appID, Month: m.Format("2006-01"), ResetsAt: m.AddDate(0, 1, 0)}
	err := q.QueryRow(ctx, `SELECT a.plan_id, p.monthly_quota, p.max_stored,
			COALESCE((SELECT u.deliveries FROM usage u WHERE u.app_id = a.id AND u.month = $2), 0)
		FROM applications a JOIN plans p ON p.id = a.plan_id WHERE a.id = $1`, appID, m).
		Scan(&st.PlanID, &st.Quota, &st.MaxStored, &st.Deliveries)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, fmt.Errorf("quota of application %s: no such application", appID)
	}
	if err != nil {
		return st, fmt.Errorf("quota of application %s: %w", appID, err)
	}
	if st.MaxStored > 0 {
		if st.StoredRows, err = storedRows(ctx, q, appID); err != nil {
			return st, err
		}
		st.StorageFull = st.StoredRows >= st.MaxStored
	}
	if st.Quota == 0 {
		st.Exceeded = st.StorageFull
		return st, nil // no monthly quota: nothing more to count
	}
	if err := q.QueryRow(ctx, `SELECT count(*) FROM message_states
		WHERE endpoint_id IN (SELECT id FROM endpoints WHERE app_id = $1) AND app_id = $1 AND state IN ($2, $3, $4)`,
		appID, hook.StatePending, hook.StateDelivering, hook.StateFailed).Scan(&st.InFlight); err != nil {
		return st, fmt.Errorf("count messages on their way of %s: %w", appID, err)
	}
	st.Exceeded = st.Deliveries+st.InFlight >= st.Quota || st.StorageFull
	return st, nil
}

// left is how many more messages the quota and the storage limit admit
// (-1 = unlimited).
func (st QuotaStatus) left() int64 {
	left := int64(-1)
	if st.Quota > 0 {
		left = max(0, st.Quota-st.Deliveries-st.InFlight)
	}
	if st.MaxStored > 0 {
		room := max(0, st.MaxStored-st.StoredRows)
		if left < 0 || room < left {
			left = room
		}
	}
	return left
}

// QuotaExceeded reports whether appID has used its plan's monthly delivery
// quota (a quota of 0 is unlimited). Process calls it when it creates a
// message and stores the message as hook.StateQuotaExceeded when true.
// Answers are cached for QuotaCacheTTL, except close to the quota (see
// the comment at the top of this file for how far it can overshoot).
//
// The count of messages on their way reads the application's whole backlog
// (about 300 ms at 300,000 waiting), so the callers missing the cache at
// one moment (process's workers, each batch) share one count per
// application instead of each making their own.
func (s *Store) QuotaExceeded(ctx context.Context, appID string) (bool, error) {
	if v, ok := s.quota.get(appID, time.Now()); ok {
		return v, nil
	}
	v, err, _ := s.quota.flight.Do(appID, func() (any, error) {
		now := time.Now()
		st, err := s.quotaNow(ctx, s.pool, appID, now)
		if err != nil {
			return false, err
		}
		if st.Exceeded || st.left() < 0 || st.left() > quotaCacheHeadroom {
			s.quota.put(appID, st.Exceeded, now)
		}
		return st.Exceeded, nil
	})
	if err != nil {
		return false, err
	}
	return v.(bool), nil
}

func (c *quotaCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = map[string]quotaEntry{}
}
