package deliver

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ethhook/ethhook/internal/streams"
	"github.com/ethhook/ethhook/msgstate"
)

// This file is deliver's side of the messages state machine, whose
// transitions are written in package msgstate: claiming (pending, due
// failed, or lease-expired delivering -> delivering, leased to this
// process) and handing back (delivering -> pending). Results are written by
// writer.go.

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

// lease is this process's lease on what it claims now.
func (m *Module) lease() msgstate.Lease {
	now := m.now()
	return msgstate.Lease{Owner: m.owner, Until: now.Add(m.cfg.LeaseTimeout), Now: now}
}

// claim takes ownership of messages that are pending, due for retry, or
// held by a process whose lease ran out, for enabled endpoints only
// (msgstate.Claim). A message already claimed (a duplicated job, or its
// lane pulled it first) is simply not returned. So is an ordered message of
// a FIFO endpoint: only its lane's ordered pull (fifo.go) takes those.
func (m *Module) claim(ctx context.Context, ids []string) ([]*job, error) {
	claimed, err := msgstate.Claim(ctx, m.pool, ids, m.lease())
	if err != nil {
		return nil, fmt.Errorf("claim %d messages: %w", len(ids), err)
	}
	return toJobs(claimed, false), nil
}

// pull claims up to limit of an endpoint's waiting messages, due retries
// first, then pending ones oldest first after cursor (msgstate.Pull): this
// is how a lane takes its backlog from Postgres when it has room. next is
// where the pending ones it took end.
func (m *Module) pull(ctx context.Context, endpointID string, limit int, cursor msgstate.PullCursor) ([]*job, msgstate.PullCursor, error) {
	claimed, next, err := msgstate.Pull(ctx, m.pool, endpointID, limit, m.lease(), cursor)
	if err != nil {
		return nil, cursor, fmt.Errorf("pull messages of endpoint %s: %w", endpointID, err)
	}
	return toJobs(claimed, false), next, nil
}

// toJobs makes jobs of claimed messages. RETURNING follows the plan, not
// any order asked for: unordered jobs are sorted oldest first (ids are
// ULIDs, so they break ties in creation order), ordered ones (fifo) by
// chain order.
func toJobs(claimed []msgstate.Claimed, fifo bool) []*job {
	jobs := make([]*job, len(claimed))
	for i := range claimed {
		c := &claimed[i]
		jobs[i] = &job{id: c.ID, endpointID: c.EndpointID, appID: c.AppID, webhookID: c.WebhookID, payload: c.Payload,
			attempts: c.Attempts, retryBase: c.RetryBase, createdAt: c.CreatedAt, lease: c.LeaseUntil,
			fifo: fifo, group: c.FIFOKey, block: c.Block, logIndex: c.LogIndex, typ: c.Type}
	}
	if fifo {
		sort.Slice(jobs, func(a, b int) bool { return jobs[a].before(jobs[b]) })
		return jobs
	}
	sort.Slice(jobs, func(a, b int) bool {
		if !jobs[a].createdAt.Equal(jobs[b].createdAt) {
			return jobs[a].createdAt.Before(jobs[b].createdAt)
		}
		return jobs[a].id < jobs[b].id
	})
	return jobs
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
		m.redisOut.Report("remove stale scheduled retries", err)
	}
}

// handBack returns claimed messages (ids, or all this process holds when
// nil) to pending, and offers them again on the jobs stream if asked.
func (m *Module) handBack(ctx context.Context, ids []string, reoffer bool) (int, error) {
	pairs, err := msgstate.HandBack(ctx, m.pool, m.owner, ids)
	if err != nil {
		return 0, fmt.Errorf("hand back messages: %w", err)
	}
	if !reoffer {
		return len(pairs), nil
	}
	return len(pairs), streams.Offer(ctx, m.rdb, m.keys, pairs...)
}
