package deliver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ethhook/ethhook/hook"
)

// legacySweepSQL is the sweep as it was before sweepSQL: one scan of every
// waiting state, the conditions as filters (same parameters).
const legacySweepSQL = `
	SELECT s.id, s.endpoint_id FROM message_states s JOIN endpoints e ON e.id = s.endpoint_id AND e.enabled
	WHERE (s.state = 'delivering' AND s.lease_until < $2)
	   OR (((s.state = 'pending' AND s.updated_at < LEAST(now() - $1::bigint * interval '1 millisecond', $5))
	        OR (s.state = 'failed' AND s.next_attempt_at < LEAST($3, $5)))
	       AND s.endpoint_id <> ALL($4))
	ORDER BY s.created_at LIMIT $6`

// backlogFixture makes BenchmarkSweep's database: 300,000 pending
// messages an hour old on one endpoint (hot), 1,000 other endpoints with
// two each, three delivering ones with expired leases and one overdue
// retry on hot.
func backlogFixture(b *testing.B) (*env, string) {
	e := newEnv(b)
	ctx := context.Background()
	app := e.app(b, "unlimited")
	hot, _ := e.endpoint(b, app, "https://hot.example", epOpt{})
	exec := func(sql string, args ...any) {
		if _, err := e.pool.Exec(ctx, sql, args...); err != nil {
			b.Fatal(err)
		}
	}
	exec(`INSERT INTO endpoints (id, app_id, url, secret_enc) SELECT 'ep_idle_' || i, $1, 'https://idle.example', '\x00'
		FROM generate_series(1, 1000) i`, app)
	states := `INSERT INTO message_states (id, app_id, endpoint_id, state, created_at, updated_at, type, lease_until, next_attempt_at)
		SELECT 'msg_' || $5 || lpad(i::text, 8, '0'), $1, %s, $2, now() - interval '1 hour' + i * interval '1 millisecond',
			now() - interval '1 hour' + i * interval '1 millisecond', 'log', $3, $4
		FROM generate_series(1, $6) i`
	old := time.Now().Add(-time.Hour)
	exec(fmt.Sprintf(states, "$7"), app, hook.StatePending, nil, nil, "hot_", 300000, hot)
	exec(fmt.Sprintf(states, "'ep_idle_' || (i % 1000 + 1)"), app, hook.StatePending, nil, nil, "idle_", 2000)
	exec(fmt.Sprintf(states, "$7"), app, hook.StateDelivering, old, nil, "lease_", 3, hot)
	exec(fmt.Sprintf(states, "$7"), app, hook.StateFailed, nil, old, "retry_", 1, hot)
	exec(`ANALYZE message_states`)
	exec(`ANALYZE endpoints`)

	return e, hot
}

// BenchmarkSweep: one sweep's query on backlogFixture's database. The hot
// endpoint's lane is busy in this process (busy) or not (another process
// drains it: idle); legacy is the query before sweepSQL.
//
//	go test -run '^$' -bench Sweep -benchtime 20x -count 2 ./modules/deliver/
func BenchmarkSweep(b *testing.B) {
	e, hot := backlogFixture(b)
	ctx := context.Background()
	stale := 30 * time.Second
	now := time.Now()
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, shape := range []struct {
		name string
		busy []string
		want int
	}{{"busy", []string{hot}, 2003}, {"idle", []string{}, sweepBatch}} {
		lo, hi := sweepRanges(shape.busy)
		args := []any{stale.Milliseconds(), now, now.Add(-stale), shape.busy, far, sweepBatch}
		for _, q := range []struct {
			name, sql string
			args      []any
		}{{"legacy", legacySweepSQL, args}, {"new", sweepSQL, append(args, lo, hi)}} {
			b.Run(shape.name+"/"+q.name, func(b *testing.B) {
				for range b.N {
					rows, err := e.pool.Query(ctx, q.sql, q.args...)
					if err != nil {
						b.Fatal(err)
					}
					got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[hook.Job])
					if err != nil || len(got) != shape.want {
						b.Fatalf("%d offered, want %d: %v", len(got), shape.want, err)
					}
				}
			})
		}
	}
}

// BenchmarkQueueGauges: one refresh of the queue gauges and the
// per-endpoint metrics on backlogFixture's database: two scans of the
// waiting states as before (legacy: the count by state, then the
// per-endpoint scan) or one (new: the totals from the per-endpoint scan).
//
//	go test -run '^$' -bench QueueGauges -benchtime 20x -count 2 ./modules/deliver/
func BenchmarkQueueGauges(b *testing.B) {
	e, _ := backlogFixture(b)
	ctx := context.Background()
	m, err := New(e.deps(b, e.cfg, "b", prometheus.NewRegistry()), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("legacy", func(b *testing.B) {
		for range b.N {
			m.refreshGauges(ctx, nil)
			m.refreshEndpointMetrics(ctx)
		}
	})
	b.Run("new", func(b *testing.B) {
		for range b.N {
			m.refreshGauges(ctx, m.refreshEndpointMetrics(ctx))
		}
	})
}
