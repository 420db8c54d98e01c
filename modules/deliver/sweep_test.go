package deliver

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
)

// The sweeper re-offers a pending message only once the group has read past
// its job: under a backlog the job is still in the stream, and a second one
// would only add work while delivery is behind.
func TestSweeperLeavesMessagesWhoseJobsAreStillUnread(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.app(t, "")
	ep, _ := e.endpoint(t, app, "http://127.0.0.1:9/hook", epOpt{})
	m := e.idleModule(t)
	id, _ := e.message(t, app, ep, "") // its job waits unread
	if _, err := e.pool.Exec(ctx, `UPDATE message_states SET updated_at = now() - interval '1 hour' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	jobs := func() int64 {
		n, err := e.rdb.Do(ctx, e.rdb.B().Xlen().Key(e.keys().DeliverJobs()).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := m.sweepOnce(ctx, 3*m.cfg.SweepInterval); err != nil {
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
	if err := m.sweepOnce(ctx, 3*m.cfg.SweepInterval); err != nil {
		t.Fatal(err)
	}
	if n := jobs(); n != 2 {
		t.Fatalf("%d jobs after sweeping with the job read and lost, want 2 (offered again)", n)
	}
}

// A lane that suspects a backlog pulls its endpoint's waiting messages
// itself, so the sweeper does not offer them; but a pull never takes an
// expired lease (a process died holding it), so that one is offered even
// while the endpoint's lane is busy. The overlooked messages of the
// endpoints whose ids sort before and after the busy one are offered (the
// sweep steps over the busy endpoint's ids: sweepSQL).
func TestSweeperOffersExpiredLeasesOfABusyEndpoint(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.app(t, "")
	before, _ := e.endpoint(t, app, "http://127.0.0.1:9/hook", epOpt{})
	ep, _ := e.endpoint(t, app, "http://127.0.0.1:9/hook", epOpt{})
	after, _ := e.endpoint(t, app, "http://127.0.0.1:9/hook", epOpt{})
	if !(before < ep && ep < after) {
		t.Fatalf("endpoint ids out of order: %s %s %s", before, ep, after)
	}
	m := e.idleModule(t)
	m.lanes.by[ep] = &lane{id: ep, m: m, depth: 10, hinted: 1} // busy: a backlog is suspected (no goroutine runs it)
	waiting, _ := e.insertMessage(t, app, ep, "", 0)
	leased, _ := e.insertMessage(t, app, ep, "", 0)
	lostBefore, _ := e.insertMessage(t, app, before, "", 0)
	lostAfter, _ := e.insertMessage(t, app, after, "", 0)
	if _, err := e.pool.Exec(ctx, `UPDATE message_states SET updated_at = now() - interval '1 hour' WHERE id = ANY($1)`,
		[]string{waiting, lostBefore, lostAfter}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE message_states SET state = 'delivering', lease_owner = 'gone', lease_until = now() - interval '1 minute'
		WHERE id = $1`, leased); err != nil {
		t.Fatal(err)
	}
	entries := e.sweepOffers(t, m)
	offered := map[string]bool{}
	for _, en := range entries {
		offered[en.FieldValues["message_id"]] = true
	}
	if len(entries) != 3 || !offered[leased] || !offered[lostBefore] || !offered[lostAfter] {
		t.Fatalf("offered %v, want the expired lease %s and the other endpoints' %s and %s", entries, leased, lostBefore, lostAfter)
	}
}

// Redis back empty (restarted without its data, or a failover to a replica
// that lacked it) takes the jobs of waiting messages with it. Intake finds
// the jobs group gone and the sweeper offers the waiting messages at once,
// instead of after three sweep intervals (30 s as shipped, 3 h here), which
// made each such message that late (the faults suite's redis-restart-empty).
func TestJobsRedisLostAreSweptAtOnce(t *testing.T) {
	e, _, rc, app, ep := startWithSweepAnHourAway(t)
	ctx := context.Background()

	lost, _ := e.insertMessage(t, app, ep, "", 0) // its job was in the Redis that was lost
	if err := e.rdb.Do(ctx, e.rdb.B().Del().Key(e.keys().DeliverJobs()).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	e.waitState(t, lost, hook.StateSucceeded)
	if n := rc.count(); n != 2 {
		t.Fatalf("receiver got %d webhooks, want 2", n)
	}
}

// A Redis outage may end with the last jobs Redis acknowledged lost (a
// failover to a replica that had not had them yet, a restart from a
// snapshot): their messages wait with no job. Once the outage is over the
// sweeper offers them at once, not three sweep intervals
// later (cluster-deliver-master: 25 s late under load).
func TestJobsLostWithARedisOutageAreSweptSoonAfter(t *testing.T) {
	e := newEnv(t)
	name := "deliver-under-test-" + e.prefix
	e, m, _, app, ep := startOnWithSweepAnHourAway(t, e, testenv.NamedRedis(t, name))

	lost, _ := e.insertMessage(t, app, ep, "", 0) // its job went with the master
	eventually(t, "the module to notice its connections dropped", func() bool {
		testenv.DropRedis(t, e.rdb, name)
		return m.redisOut.Down()
	})
	e.waitState(t, lost, hook.StateSucceeded)
}

// A deliver process killed after acknowledging jobs it left to its lanes
// (the backlog they were to pull) leaves their messages pending with no
// job. Once its liveness key is gone and its messages are reclaimed, the
// sweeper offers those at once too.
func TestJobsOfADeadProcessAreSweptAtOnce(t *testing.T) {
	e, m, _, app, ep := startWithSweepAnHourAway(t)
	ctx := context.Background()

	lost, _ := e.insertMessage(t, app, ep, "", 0) // its job was acknowledged by the dead process
	if err := e.rdb.Do(ctx, e.rdb.B().Sadd().Key(m.ownersKey()).Member("dead-1").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	e.waitState(t, lost, hook.StateSucceeded)
}

// startWithSweepAnHourAway runs a module whose regular sweep is an hour
// away, with one endpoint that has had a webhook delivered (so intake is
// reading): a message it then gets can only come from a prompt sweep.
func startWithSweepAnHourAway(t *testing.T) (*env, *Module, *receiver, string, string) {
	t.Helper()
	return startOnWithSweepAnHourAway(t, newEnv(t), nil)
}

// startOnWithSweepAnHourAway is startWithSweepAnHourAway on e, the module
// on its own Redis client own when not nil.
func startOnWithSweepAnHourAway(t *testing.T, e *env, own rueidis.Client) (*env, *Module, *receiver, string, string) {
	t.Helper()
	rc := newReceiver(t, nil)
	app := e.app(t, "")
	ep, _ := e.endpoint(t, app, rc.URL+"/hook", epOpt{})
	cfg := e.cfg
	cfg.Delivery.SweepInterval = time.Hour
	if own != nil {
		test := e.rdb
		e.rdb = own
		defer func() { e.rdb = test }()
	}
	m, _ := e.startWith(t, cfg)
	first, _ := e.message(t, app, ep, "")
	e.waitState(t, first, hook.StateSucceeded)
	return e, m, rc, app, ep
}

// A disabled endpoint keeps its waiting messages; the sweep skips them
// before its limit, so an older backlog of one (more than a sweep takes)
// does not keep another endpoint's overlooked message from being offered.
func TestSweeperIsNotFilledByADisabledEndpointsBacklog(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.app(t, "")
	off, _ := e.endpoint(t, app, "http://127.0.0.1:9/hook", epOpt{})
	on, _ := e.endpoint(t, app, "http://127.0.0.1:9/hook", epOpt{})
	m := e.idleModule(t)
	if _, err := e.pool.Exec(ctx, `UPDATE endpoints SET enabled = false WHERE id = $1`, off); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO message_states (id, app_id, endpoint_id, state, created_at, updated_at, type)
		SELECT 'msg_off_' || lpad(i::text, 8, '0'), $1, $2, 'pending', now() - interval '2 hours', now() - interval '2 hours', 'log'
		FROM generate_series(1, $3) i`, app, off, sweepBatch+1); err != nil {
		t.Fatal(err)
	}
	lost, _ := e.insertMessage(t, app, on, "", 0)
	if _, err := e.pool.Exec(ctx, `UPDATE message_states SET updated_at = now() - interval '1 hour' WHERE id = $1`, lost); err != nil {
		t.Fatal(err)
	}
	entries := e.sweepOffers(t, m)
	if len(entries) != 1 || entries[0].FieldValues["message_id"] != lost {
		t.Fatalf("offered %d entries, want only %s", len(entries), lost)
	}
}

// idleModule is a deliver module that is not running, with its jobs group.
func (e *env) idleModule(t *testing.T) *Module {
	t.Helper()
	m, err := New(e.deps(t, e.cfg, "1.2.3", prometheus.NewRegistry()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ensureGroup(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

// sweepOffers runs one sweep of m and returns the jobs stream's entries.
func (e *env) sweepOffers(t *testing.T, m *Module) []rueidis.XRangeEntry {
	t.Helper()
	ctx := context.Background()
	if err := m.sweepOnce(ctx, 3*m.cfg.SweepInterval); err != nil {
		t.Fatal(err)
	}
	entries, err := e.rdb.Do(ctx, e.rdb.B().Xrange().Key(e.keys().DeliverJobs()).Start("-").End("+").Build()).AsXRange()
	if err != nil {
		t.Fatal(err)
	}
	return entries
}
