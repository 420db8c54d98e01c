package deliver

import (
	"context"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/internal/streams"
)

// readBatch is the most jobs one read takes.
const readBatch = 1000

// intake reads delivery jobs and claims their messages for their lanes. A
// job is an announcement that an endpoint has work: what its lane has no
// room for is acknowledged and left to the lane, which pulls it from
// Postgres when it has room. Intake reads no more jobs than the process may
// hold messages (MaxHeld, MaxHeldMiB): at the cap the jobs wait in the stream.
//
// A read Redis carried out but whose answer never arrived (the connection
// dropped, the client timed out, or in a cluster the master died after its
// replica had the read) leaves jobs in this consumer's pending list that
// intake never saw: a read of new entries (">") never returns them again.
// So after a failed read or acknowledgement intake reads its own pending
// entries ("0") until there are none, then new ones again. Intake handles
// one read at a time and acknowledges it before the next, so whatever its
// own list holds then is such an orphan, never a job it is handling.
// (Without this the sweeper found them after three sweep intervals: 25 s
// late in cluster-deliver-master.)
func (m *Module) intake(ctx context.Context, consumer string) error {
	key := m.keys.DeliverJobs()
	lastReclaim := time.Now()
	own := false // read this consumer's own pending entries next
	for {
		count, ok := m.hold.waitRoom(ctx, readBatch)
		if !ok {
			return ctx.Err()
		}
		// Entries read by a process that died before acknowledging them.
		if time.Since(lastReclaim) > m.cfg.LeaseTimeout {
			lastReclaim = time.Now()
			entries, _, err := streams.Autoclaim(ctx, m.rdb, key, consumerGroup, consumer, m.cfg.LeaseTimeout, "0-0", int64(count))
			if err == nil && len(entries) > 0 {
				own = !m.handleEntries(ctx, entries) || own
			}
			continue
		}
		id, block := ">", time.Second
		if own {
			id, block = "0", 0
		}
		entries, err := streams.Read(ctx, m.rdb, key, consumerGroup, consumer, id, int64(count), block)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			own = true
			if streams.IsNoGroup(err) {
				// Redis lost the jobs stream (restarted empty, or failed over
				// to a replica without it): the jobs it held are gone.
				if err := m.ensureGroup(ctx); err != nil {
					m.log.Warn("recreate consumer group", zap.Error(err))
				}
				m.sweepLostJobs()
				continue
			}
			m.redisOut.Fail("read delivery jobs", err)
			sleep.For(ctx, time.Second)
			continue
		}
		m.redisOut.OK()
		if own && len(entries) == 0 {
			own = false
			continue
		}
		if len(entries) > 0 && !m.handleEntries(ctx, entries) {
			own = true
			if ctx.Err() == nil {
				sleep.For(ctx, time.Second) // Redis failing: not a loop of claims
			}
		}
	}
}

// handleEntries claims the messages of a batch of jobs for their lanes, as
// far as the lanes and the process-wide caps have room; the rest become
// backlog hints. Then the jobs are acknowledged: every one of them is either
// claimed, or its lane knows to pull. It reports whether the acknowledgement
// went through.
func (m *Module) handleEntries(ctx context.Context, entries []rueidis.XRangeEntry) bool {
	ids := make([]string, 0, len(entries))
	byEndpoint := map[string][]string{}
	var order []string
	for _, e := range entries {
		ids = append(ids, e.ID)
		j, err := hook.ParseJob(e.FieldValues)
		if err != nil {
			continue
		}
		mid, eid := j.MessageID, j.EndpointID
		if _, ok := byEndpoint[eid]; !ok {
			order = append(order, eid)
		}
		byEndpoint[eid] = append(byEndpoint[eid], mid)
	}
	// The lanes about to start need their endpoints: loaded for the whole
	// batch in one go, while the messages are claimed.
	m.endpoints.prefetch(ctx, order)
	total := 0
	for _, mids := range byEndpoint {
		total += len(mids)
	}
	held := m.hold.reserve(total)
	left := held
	type share struct {
		l *lane
		n int
	}
	shares := make([]share, 0, len(order))
	want := make([]string, 0, held)
	for _, eid := range order {
		mids := byEndpoint[eid]
		// reserve hints the lane for whatever it is not given here,
		// including what the process-wide caps leave out.
		l, n := m.lanes.reserve(eid, len(mids))
		if n > left {
			l.settle(n-left, nil)
			n = left
			l.hint()
		}
		left -= n
		shares = append(shares, share{l, n})
		want = append(want, mids[:n]...)
	}
	var jobs []*job
	for len(want) > 0 {
		var err error
		jobs, err = m.claim(ctx, want)
		if err == nil {
			m.pgOut.OK()
			m.unschedule(ctx, jobs)
			break
		}
		if ctx.Err() != nil {
			break // not acknowledged: read again by XAUTOCLAIM, and the sweeper has the messages anyway
		}
		m.pgOut.Fail("claim messages", err)
		sleep.For(ctx, time.Second)
	}
	m.hold.settle(held, jobs)
	claimed := map[string][]*job{}
	for _, j := range jobs {
		claimed[j.endpointID] = append(claimed[j.endpointID], j)
	}
	for _, s := range shares {
		got := claimed[s.l.id]
		s.l.settle(s.n, got)
		if len(got) < s.n {
			// A FIFO endpoint's ordered messages are not claimed here:
			// their jobs say its lane has work to pull (fifo.go).
			if ep := m.endpoints.peek(s.l.id); ep == nil || ep.fifo {
				s.l.hint()
			}
		}
	}
	if ctx.Err() != nil {
		return false
	}
	err := streams.AckDelete(ctx, m.rdb, m.keys.DeliverJobs(), consumerGroup, ids...)
	if ctx.Err() == nil {
		m.redisOut.Report("acknowledge delivery jobs", err)
	}
	return err == nil
}
