package deliver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/internal/sleep"
)

// promoter moves due retries from the Redis schedule to the jobs stream.
func (m *Module) promoter(ctx context.Context) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	keys := []string{m.retriesKey(), m.keys.DeliverJobs()}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		for {
			n, err := m.promote.Exec(ctx, m.rdb, keys, []string{fmt.Sprint(m.now().UnixMilli()), "1000"}).AsInt64()
			if err != nil {
				if ctx.Err() == nil {
					m.log.Warn("promote due retries", zap.Error(err))
				}
				break
			}
			if n < 1000 {
				break
			}
		}
	}
}

// sweeper re-offers messages that no live process holds: pending ones whose
// job was lost or refused (queue full), delivering ones whose lease ran out
// (their process died), failed ones overdue (their scheduled retry was lost).
// It also refreshes the queue gauges.
func (m *Module) sweeper(ctx context.Context) error {
	lastGauges := time.Time{}
	for {
		jitter := time.Duration(rand.Int64N(int64(m.cfg.SweepInterval)/5 + 1))
		var endpointID string
		t := time.NewTimer(m.cfg.SweepInterval - m.cfg.SweepInterval/10 + jitter)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		case endpointID = <-m.sweep:
			t.Stop()
		}
		if err := m.sweepOnce(ctx, endpointID); err != nil && ctx.Err() == nil {
			m.log.Warn("sweep messages", zap.Error(err))
		}
		if time.Since(lastGauges) > min(15*time.Second, 5*m.cfg.SweepInterval) {
			lastGauges = time.Now()
			m.refreshGauges(ctx)
		}
	}
}

// sweepOnce offers overlooked messages of all endpoints, or, for one
// endpoint (re-enabled, or its queue has room again), all its pending and
// due messages.
func (m *Module) sweepOnce(ctx context.Context, endpointID string) error {
	now := m.now()
	stale := 3 * m.cfg.SweepInterval
	var rows pgx.Rows
	var err error
	if endpointID != "" {
		rows, err = m.pool.Query(ctx, `
			SELECT m.id, m.endpoint_id FROM messages m JOIN endpoints e ON e.id = m.endpoint_id AND e.enabled
			WHERE m.endpoint_id = $1 AND (m.state = 'pending' OR (m.state = 'failed' AND m.next_attempt_at <= $2))
			ORDER BY m.created_at LIMIT $3`, endpointID, now, m.cfg.QueuePerEndpoint)
	} else {
		m.mu.Lock()
		full := []string{}
		for id, st := range m.eps {
			if len(st.queue) >= m.cfg.QueuePerEndpoint/2 {
				full = append(full, id)
			}
		}
		m.mu.Unlock()
		// Under a backlog, messages whose jobs still wait unread in the
		// stream look overlooked; offering them again would add work exactly
		// when delivery is behind. Only messages older than what the group
		// has read (less the margin) can have lost their job.
		readUpTo := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) // no backlog: no extra bound
		if read, ok := m.jobsReadUpTo(ctx); ok {
			readUpTo = read.Add(-stale)
		}
		rows, err = m.pool.Query(ctx, `
			SELECT m.id, m.endpoint_id FROM messages m JOIN endpoints e ON e.id = m.endpoint_id AND e.enabled
			WHERE ((m.state = 'pending' AND m.updated_at < LEAST(now() - $1::bigint * interval '1 millisecond', $5))
			    OR (m.state = 'delivering' AND m.lease_until < $2)
			    OR (m.state = 'failed' AND m.next_attempt_at < LEAST($3, $5)))
			  AND m.endpoint_id <> ALL($4)
			ORDER BY m.created_at LIMIT 5000`, stale.Milliseconds(), now, now.Add(-stale), full, readUpTo)
	}
	if err != nil {
		return fmt.Errorf("find overlooked messages: %w", err)
	}
	pairs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[idPair])
	if err != nil {
		return fmt.Errorf("find overlooked messages: %w", err)
	}
	if len(pairs) > 0 {
		m.log.Debug("re-offering messages", zap.Int("messages", len(pairs)), zap.String("endpoint", endpointID))
	}
	return m.offer(ctx, pairs)
}

// jobsReadUpTo is the time of the last jobs-stream entry the deliver group
// read, when entries wait unread behind it (a backlog); ok is false when
// nothing is unread or Redis cannot tell.
func (m *Module) jobsReadUpTo(ctx context.Context) (time.Time, bool) {
	groups, err := m.rdb.Do(ctx, m.rdb.B().XinfoGroups().Key(m.keys.DeliverJobs()).Build()).ToArray()
	if err != nil {
		return time.Time{}, false
	}
	for _, g := range groups {
		info, err := g.AsMap()
		if err != nil {
			return time.Time{}, false
		}
		nameMsg, lastMsg, lagMsg := info["name"], info["last-delivered-id"], info["lag"]
		if name, _ := nameMsg.ToString(); name != consumerGroup {
			continue
		}
		if lag, err := lagMsg.AsInt64(); err == nil && lag == 0 {
			return time.Time{}, false // nothing unread: no backlog
		}
		// lag is nil when Redis cannot compute it (entries deleted): a backlog may exist.
		last, err := lastMsg.ToString()
		if err != nil {
			return time.Time{}, false
		}
		msPart, _, _ := strings.Cut(last, "-")
		ms, err := strconv.ParseInt(msPart, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		return time.UnixMilli(ms), true
	}
	return time.Time{}, false
}

func (m *Module) refreshGauges(ctx context.Context) {
	rows, err := m.pool.Query(ctx, `SELECT state, count(*) FROM messages WHERE state IN ('pending', 'delivering', 'failed') GROUP BY state`)
	if err == nil {
		counts := map[string]float64{"pending": 0, "delivering": 0, "failed": 0}
		for rows.Next() {
			var s string
			var n int64
			if rows.Scan(&s, &n) == nil {
				counts[s] = float64(n)
			}
		}
		rows.Close()
		for s, n := range counts {
			m.met.messages.WithLabelValues(s).Set(n)
		}
	}
	var disabled int64
	if m.pool.QueryRow(ctx, `SELECT count(*) FROM endpoints WHERE NOT enabled`).Scan(&disabled) == nil {
		m.met.disabled.Set(float64(disabled))
	}
	if n, err := m.rdb.Do(ctx, m.rdb.B().Zcard().Key(m.retriesKey()).Build()).AsInt64(); err == nil {
		m.met.scheduled.Set(float64(n))
	}
}

// heartbeat renews the leases of the messages this process holds (not of
// every message leased to it: see Module.held).
func (m *Module) heartbeat(ctx context.Context) error {
	t := time.NewTicker(m.cfg.LeaseTimeout / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		m.mu.Lock()
		ids := make([]string, 0, len(m.held))
		for id := range m.held {
			ids = append(ids, id)
		}
		m.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		// SKIP LOCKED: the heartbeat never waits on a row the result writer
		// holds (that row is being finished anyway), so the two cannot
		// deadlock; a skipped row is renewed on the next beat.
		if _, err := m.pool.Exec(ctx, `
			WITH locked AS (
			    SELECT id FROM messages WHERE id = ANY($3) AND state = 'delivering' AND lease_owner = $1
			    FOR UPDATE SKIP LOCKED
			)
			UPDATE messages m SET lease_until = $2 FROM locked WHERE m.id = locked.id`,
			m.owner, m.now().Add(m.cfg.LeaseTimeout), ids); err != nil && ctx.Err() == nil {
			m.log.Warn("renew leases", zap.Error(err))
		}
	}
}

// listenChanges follows the endpoint service's change announcements: the
// cached endpoint is dropped and, if it is enabled, its waiting messages are
// offered again (this is how a re-enabled endpoint resumes at once; the
// periodic sweep and the cache expiry cover a missed announcement).
func (m *Module) listenChanges(ctx context.Context) error {
	for ctx.Err() == nil {
		err := m.rdb.Receive(ctx, m.rdb.B().Subscribe().Channel(m.keys.EndpointsChanged()).Build(), func(msg rueidis.PubSubMessage) {
			id := msg.Message
			m.endpoints.invalidate(id)
			m.mu.Lock()
			if st := m.eps[id]; st != nil {
				st.poke()
			}
			m.mu.Unlock()
			m.requestSweep(id)
		})
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			m.log.Warn("endpoint change subscription", zap.Error(err))
		}
		sleep.For(ctx, time.Second)
	}
	return ctx.Err()
}
