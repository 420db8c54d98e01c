package msgstate

import (
	"fmt"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
)

// BenchmarkPullDrain drains a backlog of b.N × 50 pending messages of one
// endpoint, a Pull of 50 and a Finish (succeeded) per op, as a hot lane
// does, while another transaction holds a snapshot open (a long query, a
// count over the backlog): the dead row versions the drain leaves at the
// head of the waiting index cannot be removed meanwhile. "oldest" pulls
// from the oldest every time (before), "cursor" from where the last pull
// stopped. tail-ms/pull is the mean time of a pull over the last tenth of
// the drain.
//
//	go test -run '^$' -bench PullDrain -benchtime 2000x ./msgstate/
func BenchmarkPullDrain(b *testing.B) {
	for _, mode := range []string{"oldest", "cursor"} {
		b.Run(mode, func(b *testing.B) { pullDrain(b, mode == "cursor") })
	}
}

func pullDrain(b *testing.B, cursor bool) {
	f := newFixture(b)
	const per = 50
	total := b.N * per
	for i := 0; i < total; i += 10000 {
		ids := make([]string, min(10000, total-i))
		for k := range ids {
			ids[k] = fmt.Sprintf("msg_%026d", i+k)
		}
		f.insert(hook.StatePending, ids...)
	}
	tx, err := f.pool.Begin(f.ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback(f.ctx)
	if _, err := tx.Exec(f.ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`); err != nil {
		b.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(f.ctx, `SELECT count(*) FROM message_states`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	var at PullCursor
	var tail time.Duration
	tailFrom := b.N - max(1, b.N/10)
	b.ResetTimer()
	for i := range b.N {
		now := time.Now()
		if !cursor {
			at = PullCursor{}
		}
		t0 := time.Now()
		got, next, err := Pull(f.ctx, f.pool, "ep_A", per, Lease{Owner: "o", Until: now.Add(time.Minute), Now: now}, at)
		if err != nil {
			b.Fatal(err)
		}
		if i >= tailFrom {
			tail += time.Since(t0)
		}
		if len(got) != per {
			b.Fatalf("pull %d took %d, want %d", i, len(got), per)
		}
		at = next
		r := Results{}
		for _, c := range got {
			s := int32(200)
			r.IDs, r.States, r.Attempts = append(r.IDs, c.ID), append(r.States, hook.StateSucceeded), append(r.Attempts, 1)
			r.Statuses, r.Errors, r.Nexts = append(r.Statuses, &s), append(r.Errors, ""), append(r.Nexts, nil)
		}
		if _, err := Finish(f.ctx, f.pool, "o", &r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(tail.Microseconds())/1000/float64(b.N-tailFrom), "tail-ms/pull")
}
