package deliver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/streams"
)

// sweeper repairs what a crash or a lost write left behind, off the hot
// path: it re-offers pending messages whose job was lost (and whose lane, if
// any, does not know of them), delivering ones whose lease ran out (their
// process died), failed ones overdue (their scheduled retry was lost).
// (The queue gauges are refreshed by metricsLoop.)
//
// A message counts as overlooked once it has waited three sweep intervals
// without a change: a job younger than that may still be in the stream.
// When Redis lost its data, though (intake found the jobs group gone), may
// have lost its last writes (an outage ended: a failover, a restart), or a
// dead deliver process was reclaimed (what it had read and not claimed died
// with it), the jobs of waiting messages may be gone, and waiting 30 s for
// them to age would make each one as late: then the sweeper sweeps at once
// with no age bound (sweepLostJobs). An offer of a message whose job survived is
// harmless: a claim takes a message once.
func (m *Module) sweeper(ctx context.Context) error {
	for {
		jitter := time.Duration(rand.Int64N(int64(m.cfg.SweepInterval)/5 + 1))
		t := time.NewTimer(m.cfg.SweepInterval - m.cfg.SweepInterval/10 + jitter)
		stale := 3 * m.cfg.SweepInterval
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		case <-m.lostJobs:
			t.Stop()
			stale = 0
			m.log.Info("redis may have lost delivery jobs: sweeping postgres for waiting messages now")
		}
		_ = m.sweepOnce(ctx, stale) // reported to the outages
	}
}

// sweepLostJobs asks the sweeper for a sweep with no age bound (see
// sweeper); asks while one is queued are one.
func (m *Module) sweepLostJobs() {
	select {
	case m.lostJobs <- struct{}{}:
	default:
	}
}

// sweepOnce offers the messages overlooked for stale or longer: see sweeper.
func (m *Module) sweepOnce(ctx context.Context, stale time.Duration) error {
	now := m.now()
	// A lane that suspects a backlog, or is half full, pulls its endpoint's
	// waiting messages itself: offering them would only add jobs. Expired
	// leases are offered whatever the lane: a pull does not take them.
	busy := m.lanes.busy()
	// Under a backlog, messages whose jobs still wait unread in the
	// stream look overlooked; offering them again would add work exactly
	// when delivery is behind. Only messages older than what the group
	// has read (less the margin) can have lost their job.
	readUpTo := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) // no backlog: no extra bound
	if read, ok := m.jobsReadUpTo(ctx); ok {
		readUpTo = read.Add(-stale)
	}
	lo, hi := sweepRanges(busy)
	rows, err := m.pool.Query(ctx, sweepSQL, stale.Milliseconds(), now, now.Add(-stale), busy, readUpTo, sweepBatch, lo, hi)
	var pairs []hook.Job
	if err == nil {
		pairs, err = pgx.CollectRows(rows, pgx.RowToStructByPos[hook.Job])
	}
	if ctx.Err() == nil {
		m.pgOut.Report("sweep messages", err)
	}
	if err != nil {
		return fmt.Errorf("find overlooked messages: %w", err)
	}
	if len(pairs) > 0 {
		m.log.Debug("re-offering messages", zap.Int("messages", len(pairs)))
	}
	err = streams.Offer(ctx, m.rdb, m.keys, pairs...)
	if ctx.Err() == nil && len(pairs) > 0 {
		m.redisOut.Report("re-offer messages", err)
	}
	return err
}

// sweepBatch is the most messages one sweep offers.
const sweepBatch = 5000

// sweepSQL finds what sweepOnce offers: $1 stale (ms), $2 now, $3 now -
// stale, $4 the busy endpoints, $5 the read-up-to bound, $6 sweepBatch,
// ($7, $8) the ranges of endpoint ids between the busy ones
// (sweepRanges).
//
// The waiting index leads with endpoint_id, so the scan of waiting states
// is made as range scans that step over the busy endpoints: their waiting
// messages, often the whole backlog (one hot endpoint), are not read at
// all, where a filter would read each one (with its row, for the other
// conditions) to drop it (BenchmarkSweep, 300,000 waiting on one busy
// endpoint: 68 ms as one filtered scan, 3.7 ms this way). Their expired
// leases are looked up by endpoint and state. Driving the sweep from the
// endpoints instead would cost a probe of every partition per endpoint:
// far worse with thousands of endpoints and a month of daily partitions.
//
// Each range takes the oldest sweepBatch of enabled endpoints (joined
// before the limit: a disabled endpoint's backlog must not fill it).
const sweepSQL = `
	SELECT w.id, w.endpoint_id FROM (
	    SELECT x.id, x.endpoint_id, x.created_at
	    FROM unnest($7::text[], $8::text[]) AS r(lo, hi) CROSS JOIN LATERAL (
	        SELECT s.id, s.endpoint_id, s.created_at FROM message_states s JOIN endpoints e ON e.id = s.endpoint_id AND e.enabled
	        WHERE s.endpoint_id > r.lo AND s.endpoint_id < r.hi AND s.state IN ('pending', 'delivering', 'failed')
	          AND ((s.state = 'delivering' AND s.lease_until < $2)
	               OR (s.state = 'pending' AND s.updated_at < LEAST(now() - $1::bigint * interval '1 millisecond', $5))
	               OR (s.state = 'failed' AND s.next_attempt_at < LEAST($3, $5)))
	        ORDER BY s.created_at LIMIT $6
	    ) x
	    UNION ALL
	    SELECT s.id, s.endpoint_id, s.created_at FROM message_states s JOIN endpoints e ON e.id = s.endpoint_id AND e.enabled
	    WHERE s.endpoint_id = ANY($4) AND s.state = 'delivering' AND s.lease_until < $2
	) w
	ORDER BY w.created_at LIMIT $6`

// sweepRanges returns the ranges of endpoint ids (lo, hi), both exclusive,
// that leave out the busy ones: below the first, between each two, above
// the last. The first lo is "" and the last hi a string above every id
// (U+10FFFF sorts after any other text in the byte order of the "C"
// collation the ids use).
func sweepRanges(busy []string) (lo, hi []string) {
	sorted := slices.Clone(busy)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	lo = append([]string{""}, sorted...)
	hi = append(sorted, "\U0010FFFF")
	return lo, hi
}

// jobsReadUpTo is the time of the last jobs-stream entry the deliver group
// read, when entries wait unread behind it (a backlog); ok is false when
// nothing is unread or Redis cannot tell.
func (m *Module) jobsReadUpTo(ctx context.Context) (time.Time, bool) {
	g, found, err := streams.Info(ctx, m.rdb, m.keys.DeliverJobs(), consumerGroup)
	if err != nil || !found {
		return time.Time{}, false
	}
	if g.LagKnown && g.Lag == 0 {
		return time.Time{}, false // nothing unread: no backlog
	}
	// lag is unknown when Redis cannot compute it (entries deleted): a backlog may exist.
	last, err := streams.ParseID(g.LastDelivered)
	if err != nil {
		return time.Time{}, false
	}
	return last.Time(), true
}

// refreshGauges sets the queue gauges: the unfinished messages by state
// (counts, from refreshEndpointMetrics's scan; counted here when that gave
// none), the disabled endpoints and the scheduled retries.
func (m *Module) refreshGauges(ctx context.Context, counts map[string]int64) {
	if counts == nil {
		rows, err := m.pool.Query(ctx, `SELECT state, count(*) FROM message_states WHERE state IN ('pending', 'delivering', 'failed') GROUP BY state`)
		if err == nil {
			counts = map[string]int64{"pending": 0, "delivering": 0, "failed": 0}
			for rows.Next() {
				var s string
				var n int64
				if rows.Scan(&s, &n) == nil {
					counts[s] = n
				}
			}
			rows.Close()
			if rows.Err() != nil {
				counts = nil
			}
		}
	}
	for s, n := range counts {
		m.met.messages.WithLabelValues(s).Set(float64(n))
	}
	var disabled int64
	if m.pool.QueryRow(ctx, `SELECT count(*) FROM endpoints WHERE NOT enabled`).Scan(&disabled) == nil {
		m.met.disabled.Set(float64(disabled))
	}
	if n, err := m.rdb.Do(ctx, m.rdb.B().Zcard().Key(m.retriesKey()).Build()).AsInt64(); err == nil {
		m.met.scheduled.Set(float64(n))
	}
}
