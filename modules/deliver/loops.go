package deliver

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/rueidis"

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
			n, err := promoteScript.Exec(ctx, m.rdb, keys, []string{fmt.Sprint(m.now().UnixMilli()), "1000"}).AsInt64()
			if err != nil {
				if ctx.Err() == nil {
					m.redisOut.fail("promote due retries", err)
				}
				break
			}
			m.redisOut.ok()
			if n < 1000 {
				break
			}
		}
	}
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
		// SKIP LOCKED: the heartbeat never waits on a row the result writer
		// holds (that row is being finished anyway), so the two cannot
		// deadlock; a skipped row is renewed on the next beat.
		rows, err := m.pool.Query(ctx, `
			WITH locked AS (
			    SELECT id FROM messages WHERE id = ANY($3) AND state = 'delivering' AND lease_owner = $1
			    FOR UPDATE SKIP LOCKED
			)
			UPDATE messages m SET lease_until = $2 FROM locked WHERE m.id = locked.id
			RETURNING m.id`,
			m.owner, until, ids)
		var renewed []string
		if err == nil {
			renewed, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if ctx.Err() == nil {
			m.pgOut.report("renew leases", err)
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
			m.redisOut.fail("endpoint change subscription", err)
		}
		sleep.For(ctx, time.Second)
	}
	return ctx.Err()
}
