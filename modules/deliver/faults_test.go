package deliver

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/internal/testenv"
)

// Postgres connections dropped again and again while deliver works (as in
// a restart or failover): every message still ends succeeded, every webhook
// reaches the receiver, and every attempt made is in the log.
func TestPostgresGoingAwayLosesNoDelivery(t *testing.T) {
	e := newEnv(t)
	// The module gets a pool of its own, named, so only its connections
	// are dropped (not the test's).
	name := "deliver-under-test-" + e.prefix
	testPool := e.pool
	rc, ids := e.runThroughFaults(t, func() { e.pool = testenv.NamedPool(t, testPool, name) }, func() { e.pool = testPool },
		func() int64 { return int64(testenv.DropPostgres(t, name)) })
	var attempts int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM delivery_history WHERE status_code = 200`).Scan(&attempts); err != nil {
		t.Fatal(err)
	}
	if attempts < len(ids) || attempts > rc.count() {
		t.Fatalf("%d successful attempts logged for %d messages and %d requests received", attempts, len(ids), rc.count())
	}
}

// Redis connections dropped again and again while deliver works (as in a
// Redis restart): every message still ends succeeded and reaches the
// receiver.
func TestRedisGoingAwayLosesNoDelivery(t *testing.T) {
	e := newEnv(t)
	name := "deliver-under-test-" + e.prefix
	testRedis := e.rdb
	e.runThroughFaults(t, func() { e.rdb = testenv.NamedRedis(t, name) }, func() { e.rdb = testRedis },
		func() int64 { return testenv.DropRedis(t, testRedis, name) })
}

// runThroughFaults starts the module with its own connections (between
// useOwn and useTest), adds 300 messages in five rounds, dropping the
// module's connections after each, and checks that every message ends
// succeeded and reached the receiver. A drop between a POST and its record
// may send it again, with the same webhook-id.
func (e *env) runThroughFaults(t *testing.T, useOwn, useTest func(), drop func() int64) (*receiver, []string) {
	ctx := context.Background()
	rc := newReceiver(t, nil)
	app := e.app(t, "unlimited") // no rate limit: the run is about faults, not pacing
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{})
	useOwn()
	_, stop := e.start(t)
	useTest()
	t.Cleanup(stop) // runs before the module's connections close

	wids := map[string]bool{}
	var ids []string
	killed := int64(0)
	for range 5 {
		for range 60 {
			id, wid := e.message(t, app, ep, "")
			ids = append(ids, id)
			wids[wid] = true
		}
		time.Sleep(5 * time.Millisecond)
		killed += drop()
	}
	if killed == 0 {
		t.Fatal("no connection of the module was dropped: the test proves nothing")
	}
	// A claim whose answer was lost leaves a lease this process does not
	// hold: it is not renewed, runs out (LeaseTimeout), and the sweeper
	// offers the message again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM message_states WHERE state = 'succeeded'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			rows, _ := e.pool.Query(ctx, `SELECT id, state, coalesce(lease_owner, ''), lease_until, attempts FROM message_states WHERE state <> 'succeeded' LIMIT 10`)
			for rows.Next() {
				var id, state, owner string
				var until *time.Time
				var attempts int
				_ = rows.Scan(&id, &state, &owner, &until, &attempts)
				t.Logf("not succeeded: %s %s owner=%q lease_until=%v attempts=%d", id, state, owner, until, attempts)
			}
			rows.Close()
			t.Fatalf("timed out: %d of %d messages succeeded", n, len(ids))
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := map[string]int{}
	for _, r := range rc.got() {
		got[r.header.Get("webhook-id")]++
	}
	for wid := range wids {
		if got[wid] == 0 {
			t.Fatalf("webhook %s never reached the receiver", wid)
		}
	}
	t.Logf("%d connections dropped; %d requests for %d messages", killed, rc.count(), len(ids))
	return rc, ids
}

// A claim that committed but whose answer never arrived (the connection
// dropped) leaves a message leased to this process without it holding the
// message: the heartbeat must not renew that lease, so it runs out and the
// message is delivered.
func TestLeaseOfAClaimWhoseAnswerWasLostRunsOut(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rc := newReceiver(t, nil)
	app := e.app(t, "unlimited")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{})
	id, _ := e.insertMessage(t, app, ep, "", 0) // no job: only the sweeper can find it
	m, _ := e.start(t)
	if _, err := e.pool.Exec(ctx, `UPDATE message_states SET state = 'delivering', lease_owner = $2, lease_until = now() + $3::interval
		WHERE id = $1`, id, m.owner, e.cfg.Delivery.LeaseTimeout.String()); err != nil {
		t.Fatal(err)
	}
	e.waitState(t, id, "succeeded") // within 30 s: the lease (6 s here) must not be renewed
	if rc.count() != 1 {
		t.Fatalf("%d requests, want 1", rc.count())
	}
}

// A read of jobs that Redis carried out but whose answer never reached
// intake (here: taken as intake's consumer by another connection, then
// intake's connection dropped; in a cluster, a master dying after its
// replica had the read) leaves the jobs in intake's own pending list, where
// a read of new entries never finds them. Intake reads its own pending
// entries after a failed read, so the message is delivered at once, not
// after the sweeper (an hour here) or the dead-consumer reclaim (a minute).
func TestJobsReadWhoseAnswerWasLostAreDelivered(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.cfg.Delivery.SweepInterval = time.Hour
	e.cfg.Delivery.LeaseTimeout = time.Minute
	rc := newReceiver(t, nil)
	app := e.app(t, "unlimited")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{})
	name := "deliver-under-test-" + e.prefix
	testRedis := e.rdb
	e.rdb = testenv.NamedRedis(t, name)
	m, _ := e.start(t)
	e.rdb = testRedis
	consumer := m.owner + "-0"
	first, _ := e.message(t, app, ep, "") // intake is reading
	e.waitState(t, first, "succeeded")

	id, _ := e.insertMessage(t, app, ep, "", 0)
	// The job added and read as intake's consumer in one transaction:
	// intake's own blocked read is woken only after it, with nothing left.
	key := e.keys().DeliverJobs()
	b := e.rdb.B()
	res := e.rdb.DoMulti(ctx,
		b.Multi().Build(),
		b.Xadd().Key(key).Id("*").FieldValue().FieldValue("message_id", id).FieldValue("endpoint_id", ep).Build(),
		b.Xreadgroup().Group(consumerGroup, consumer).Count(10).Streams().Key(key).Id(">").Build(),
		b.Exec().Build())
	for _, r := range res {
		if err := r.Error(); err != nil {
			t.Fatal(err)
		}
	}
	if p, err := e.rdb.Do(ctx, b.Xpending().Key(key).Group(consumerGroup).Build()).ToArray(); err != nil || len(p) == 0 {
		t.Fatalf("XPENDING: %v %v", p, err)
	} else if n, _ := p[0].AsInt64(); n != 1 {
		t.Fatalf("%d jobs pending, want the 1 read as intake", n)
	}
	// Dropped until intake's read fails (it may be between two reads at
	// the first drop).
	deadline := time.Now().Add(15 * time.Second)
	killed := int64(0)
	for e.msg(t, id).State != "succeeded" {
		if time.Now().After(deadline) {
			t.Fatalf("message %s is %s 15 s after its job was read with the answer lost (%d connections dropped)",
				id, e.msg(t, id).State, killed)
		}
		killed += testenv.DropRedis(t, testRedis, name)
		time.Sleep(500 * time.Millisecond)
	}
	if killed == 0 {
		t.Fatal("no connection of the module was dropped: the test proves nothing")
	}
	if rc.count() != 2 {
		t.Fatalf("%d requests, want 2", rc.count())
	}
}

// Redis connections dropped again and again while deliver works (promoter,
// intake, a rate-limited endpoint): the outage is logged when it starts and
// when it ends, with a count of the failures meanwhile, not a line per
// failed attempt from each loop.
func TestRedisOutageLogsWhenItStartsAndEndsNotPerAttempt(t *testing.T) {
	e := newEnv(t)
	name := "deliver-under-test-" + e.prefix
	rc := newReceiver(t, nil)
	app := e.app(t, "unlimited")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{rateLimit: 200}) // every send asks the Redis rate limiter
	testRedis := e.rdb
	e.rdb = testenv.NamedRedis(t, name)
	core, logs := observer.New(zapcore.InfoLevel)
	m, err := New(module.Deps{Config: e.cfg, Pool: e.pool, Redis: e.rdb, Box: e.box, Version: "t", Log: zap.New(core), Registerer: prometheus.NewRegistry()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.rdb = testRedis
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	var ids []string
	killed := int64(0)
	for range 40 {
		for range 5 {
			id, _ := e.message(t, app, ep, "")
			ids = append(ids, id)
		}
		for range 5 {
			killed += testenv.DropRedis(t, testRedis, name)
			time.Sleep(5 * time.Millisecond)
		}
	}
	if killed == 0 {
		t.Fatal("no connection of the module was dropped: the test proves nothing")
	}
	for _, id := range ids {
		e.waitState(t, id, "succeeded")
	}
	eventually(t, "the outage to be logged as over", func() bool { return !m.redisOut.Down() })
	starts, ends, failures := 0, 0, int64(0)
	for _, l := range logs.All() {
		switch {
		case l.Message == "redis unavailable":
			starts++
		case l.Message == "redis available again":
			ends++
			failures += l.ContextMap()["failures"].(int64)
		case l.Level >= zapcore.WarnLevel:
			t.Errorf("a line per failure: %s %v", l.Message, l.ContextMap())
		}
	}
	if starts == 0 {
		t.Fatalf("%d connections dropped but no outage logged", killed)
	}
	if starts != ends {
		t.Errorf("%d outages started, %d ended", starts, ends)
	}
	t.Logf("%d connections dropped; %d outages logged, %d failed calls counted", killed, starts, failures)
}

// Postgres connections terminated again and again while deliver works
// (intake's claims, lanes' pulls, the writer, the heartbeat, the sweeper):
// the outage is logged when it starts and when it ends, with a count of
// the failures meanwhile, not a line per failed call from each loop.
func TestPostgresOutageLogsWhenItStartsAndEndsNotPerAttempt(t *testing.T) {
	e := newEnv(t)
	name := "deliver-under-test-" + e.prefix
	rc := newReceiver(t, nil)
	app := e.app(t, "unlimited")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{})
	testPool := e.pool
	core, logs := observer.New(zapcore.InfoLevel)
	m, err := New(module.Deps{Config: e.cfg, Pool: testenv.NamedPool(t, testPool, name), Redis: e.rdb, Box: e.box, Version: "t", Log: zap.New(core), Registerer: prometheus.NewRegistry()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	var ids []string
	killed := 0
	for range 40 {
		for range 5 {
			id, _ := e.message(t, app, ep, "")
			ids = append(ids, id)
		}
		for range 5 {
			killed += testenv.DropPostgres(t, name)
			time.Sleep(5 * time.Millisecond)
		}
	}
	if killed == 0 {
		t.Fatal("no connection of the module was terminated: the test proves nothing")
	}
	for _, id := range ids {
		e.waitState(t, id, "succeeded")
	}
	eventually(t, "the outage to be logged as over", func() bool { return !m.pgOut.Down() })
	starts, ends, failures := 0, 0, int64(0)
	for _, l := range logs.All() {
		switch {
		case l.Message == "postgres unavailable":
			starts++
		case l.Message == "postgres available again":
			ends++
			failures += l.ContextMap()["failures"].(int64)
		case l.Level >= zapcore.WarnLevel:
			t.Errorf("a line per failure: %s %v", l.Message, l.ContextMap())
		}
	}
	if starts == 0 {
		t.Fatalf("%d connections terminated but no outage logged", killed)
	}
	if starts != ends {
		t.Errorf("%d outages started, %d ended", starts, ends)
	}
	t.Logf("%d connections terminated; %d outages logged, %d failed calls counted", killed, starts, failures)
}
