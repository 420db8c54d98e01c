package deliver

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/streams"
)

// This file is deliver's side of the messages state machine: claiming
// (pending, due failed, or lease-expired delivering -> delivering, leased to
// this process) and handing back (delivering -> pending). Results are
// written by writer.go.

// job is a claimed message held by this process.
type job struct {
	id, endpointID, appID, webhookID string
	payload                          []byte
	attempts, retryBase              int
	createdAt                        time.Time
	lease                            time.Time // lease_until as claimed (the heartbeat renews it)

	// Ordered delivery (fifo.go): set on messages pulled in order.
	fifo     bool
	group    string // messages.fifo_key
	block    int64
	logIndex int32
	typ      string
}

const jobColumns = `m.id, m.endpoint_id, m.app_id, m.webhook_id, m.payload, m.attempts, m.retry_base, m.created_at, m.lease_until`

// claim takes ownership of messages that are pending, due for retry, or
// held by a process whose lease ran out, for enabled endpoints only. A
// message already claimed (a duplicated job, or its lane pulled it first)
// is simply not returned. So is an ordered message of a FIFO endpoint: only
// its lane's ordered pull (fifo.go) takes those.
func (m *Module) claim(ctx context.Context, ids []string) ([]*job, error) {
	now := m.now()
	rows, err := m.pool.Query(ctx, `
		UPDATE messages m SET state = 'delivering', lease_owner = $2, lease_until = $3, updated_at = now()
		FROM endpoints e
		WHERE m.id = ANY($1) AND e.id = m.endpoint_id AND e.enabled AND (m.fifo_key IS NULL OR e.ordering <> 'fifo')
		  AND (m.state = 'pending'
		       OR (m.state = 'failed' AND m.next_attempt_at <= $4)
		       OR (m.state = 'delivering' AND m.lease_until < $4))
		RETURNING `+jobColumns,
		ids, m.owner, now.Add(m.cfg.LeaseTimeout), now)
	if err != nil {
		return nil, fmt.Errorf("claim %d messages: %w", len(ids), err)
	}
	jobs, err := collectJobs(rows)
	if err != nil {
		return nil, fmt.Errorf("claim %d messages: %w", len(ids), err)
	}
	return jobs, nil
}

// pull claims up to limit of an endpoint's waiting messages, due retries
// first, then pending ones oldest first: this is how a lane takes its
// backlog from Postgres when it has room (served by the partial indexes
// messages_endpoint_pending and messages_endpoint_failed). SKIP LOCKED lets
// lanes of several processes pull one endpoint's backlog side by side.
func (m *Module) pull(ctx context.Context, endpointID string, limit int) ([]*job, error) {
	now := m.now()
	rows, err := m.pool.Query(ctx, `
		WITH due AS (
		    SELECT id FROM messages WHERE endpoint_id = $1 AND state = 'failed' AND next_attempt_at <= $4
		    ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED
		), waiting AS (
		    SELECT id FROM messages WHERE endpoint_id = $1 AND state = 'pending'
		    ORDER BY created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
		), next AS (
		    (SELECT id FROM due) UNION ALL (SELECT id FROM waiting) LIMIT $2
		)
		UPDATE messages m SET state = 'delivering', lease_owner = $3, lease_until = $5, updated_at = now()
		FROM next, endpoints e
		WHERE m.id = next.id AND e.id = m.endpoint_id AND e.enabled
		RETURNING `+jobColumns,
		endpointID, limit, m.owner, now, now.Add(m.cfg.LeaseTimeout))
	if err != nil {
		return nil, fmt.Errorf("pull messages of endpoint %s: %w", endpointID, err)
	}
	jobs, err := collectJobs(rows)
	if err != nil {
		return nil, fmt.Errorf("pull messages of endpoint %s: %w", endpointID, err)
	}
	return jobs, nil
}

// collectJobs scans claimed rows. RETURNING follows the plan, not any
// order asked for: jobs are sorted oldest first (ids are ULIDs, so they
// break ties in creation order).
func collectJobs(rows pgx.Rows) ([]*job, error) {
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*job, error) {
		j := &job{}
		err := r.Scan(&j.id, &j.endpointID, &j.appID, &j.webhookID, &j.payload, &j.attempts, &j.retryBase, &j.createdAt, &j.lease)
		return j, err
	})
	sort.Slice(jobs, func(a, b int) bool {
		if !jobs[a].createdAt.Equal(jobs[b].createdAt) {
			return jobs[a].createdAt.Before(jobs[b].createdAt)
		}
		return jobs[a].id < jobs[b].id
	})
	return jobs, err
}

// unschedule removes the scheduled retries of claimed messages. A message
// can be offered twice for one retry: by the promoter when it is due and by
// the sweeper when it looks overdue (the promoter lagging, or its ZADD lost),
// or pulled by its lane before the promoter offers it. Whichever claims it
// first makes the attempt, so the other schedule entry is stale; it is
// removed before the attempt is made, so a message that ends succeeded or
// dead has nothing left in the schedule. Only the writer adds entries, after
// this attempt's result, so no live retry is removed here.
func (m *Module) unschedule(ctx context.Context, jobs []*job) {
	if len(jobs) == 0 {
		return
	}
	members := make([]string, len(jobs))
	for i, j := range jobs {
		members[i] = j.id + " " + j.endpointID
	}
	// A failure is harmless: the promoter offers the entry once more and
	// its claim finds nothing to do.
	if err := m.rdb.Do(ctx, m.rdb.B().Zrem().Key(m.retriesKey()).Member(members...).Build()).Error(); ctx.Err() == nil {
		m.redisOut.report("remove stale scheduled retries", err)
	}
}

// handBack returns claimed messages (ids, or all this process holds when
// nil) to pending, and offers them again on the jobs stream if asked.
func (m *Module) handBack(ctx context.Context, ids []string, reoffer bool) (int, error) {
	rows, err := m.pool.Query(ctx, `
		UPDATE messages SET state = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = now()
		WHERE state = 'delivering' AND lease_owner = $1 AND ($2::text[] IS NULL OR id = ANY($2))
		RETURNING id, endpoint_id`, m.owner, ids)
	if err != nil {
		return 0, fmt.Errorf("hand back messages: %w", err)
	}
	pairs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[hook.Job])
	if err != nil {
		return 0, fmt.Errorf("hand back messages: %w", err)
	}
	if !reoffer {
		return len(pairs), nil
	}
	return len(pairs), streams.Offer(ctx, m.rdb, m.keys, pairs...)
}
