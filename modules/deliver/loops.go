package deliver

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/msgstate"
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
			n, err := promoteScript.Exec(ctx, m.rdb, keys, []string{fmt.Sprint(m.now().UnixMilli()), "1000"}).AsInt64()
			if err != nil {
				if ctx.Err() == nil {
					m.redisOut.Fail("promote due retries", err)
				}
				break
			}
			m.redisOut.OK()
			if n < 1000 {
				break
			}
		}
	}
}

// dueScore is the schedule's score of a retry due at t: t in unix
// milliseconds, rounded up. The promoter moves an entry once its score is
// at most the time in whole milliseconds, and the claim compares the time
// with next_attempt_at to the microsecond: rounded down, a retry could be
// moved in its due millisecond but before it, not be claimed (not yet due),
// and its job be acknowledged with nothing done, leaving the retry to the
// sweeper (three sweep intervals later).
func dueScore(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.After(time.UnixMilli(ms)) {
		ms++
	}
	return ms
}

// heartbeat renews the leases of the messages this process holds (not of
// every message leased to it: see holdings), those with less than five
// sixths of LeaseTimeout left: beating every third of it, a lease never
// has less than half of it left, and a message held for a moment (most
// are, for well under a second) is never renewed at all.
func (m *Module) heartbeat(ctx context.Context) error {
	t := time.NewTicker(m.cfg.LeaseTimeout / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		now := m.now()
		ids := m.hold.expiring(now.Add(m.cfg.LeaseTimeout * 5 / 6))
		if len(ids) == 0 {
			continue
		}
		until := now.Add(m.cfg.LeaseTimeout)
		// A renewal skips rows the result writer holds (msgstate.Renew):
		// those are being finished anyway, and the two cannot deadlock.
		renewed, err := msgstate.Renew(ctx, m.pool, m.owner, ids, until)
		if ctx.Err() == nil {
			m.pgOut.Report("renew leases", err)
		}
		m.hold.renewed(renewed, until)
	}
}

// listenChanges follows the endpoint service's change announcements: the
// cached endpoint is dropped and its lane (started if needed) is hinted that
// messages may wait for it: this is how a re-enabled endpoint resumes at
// once (a lane of a disabled or deleted endpoint retires). The sweep and the
// cache expiry cover a missed announcement.
func (m *Module) listenChanges(ctx context.Context) error {
	for ctx.Err() == nil {
		err := m.rdb.Receive(ctx, m.rdb.B().Subscribe().Channel(m.keys.EndpointsChanged()).Build(), func(msg rueidis.PubSubMessage) {
			id := msg.Message
			m.endpoints.invalidate(id)
			m.lanes.hint(id)
		})
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			m.redisOut.Fail("endpoint change subscription", err)
		}
		sleep.For(ctx, time.Second)
	}
	return ctx.Err()
}
