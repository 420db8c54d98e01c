package deliver

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The sweeper re-offers a pending message only once the group has read past
// its job: under a backlog the job is still in the stream, and a second one
// would only add work while delivery is behind.
func TestSweeperLeavesMessagesWhoseJobsAreStillUnread(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.app(t, "")
	ep, _ := e.endpoint(t, app, "http://127.0.0.1:9/hook", epOpt{})
	m, err := New(e.cfg, e.pool, e.rdb, e.box, "1.2.3", testLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ensureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	id, _ := e.message(t, app, ep, "") // its job waits unread
	if _, err := e.pool.Exec(ctx, `UPDATE messages SET updated_at = now() - interval '1 hour' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	jobs := func() int64 {
		n, err := e.rdb.Do(ctx, e.rdb.B().Xlen().Key(e.keys().DeliverJobs()).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := m.sweepOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := jobs(); n != 1 {
		t.Fatalf("%d jobs after sweeping with the job unread, want 1 (not offered again)", n)
	}

	// A process reads the job and dies without acting on it: now it is lost.
	time.Sleep(5 * time.Millisecond) // the stream's clock moves past the job
	if err := e.rdb.Do(ctx, e.rdb.B().Xreadgroup().Group(consumerGroup, "gone").Count(10).Streams().Key(e.keys().DeliverJobs()).Id(">").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := m.sweepOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := jobs(); n != 2 {
		t.Fatalf("%d jobs after sweeping with the job read and lost, want 2 (offered again)", n)
	}
}
