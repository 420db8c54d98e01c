package process

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/internal/testenv"
)

// A read of events Redis carried out but whose answer never reached a
// worker (here: taken as the module's consumer by another connection, then
// the module's connections dropped; in a cluster, a master dying after its
// replica had the read) leaves the entries in the consumer's pending list,
// where no read of new entries finds them. The worker whose read failed
// claims them within seconds, not after ClaimIdle (a minute here).
// Meanwhile the safe head stays below them, though a later block is
// handled: confirmations are never counted past an unhandled log.
func TestEventsReadWhoseAnswerWasLostAreHandled(t *testing.T) {
	e := newEnv(t)
	e.cfg.Process.ClaimIdle = time.Minute
	ep := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}})
	name := "process-under-test-" + randHex(4)
	r := e.startNamed(name)
	ht := r.m.tracker(testChain)

	first := transfer("lr", 1, 0, token, alice, bob, 1) // the workers are reading
	e.publish(first)
	e.eventually("the first block handled", func() bool { return e.count(ep.ID) == 1 && e.pending() == 0 })
	lost := transfer("lr", 3, 0, token, alice, bob, 3)
	e.loseRead(lost)
	later := transfer("lr", 9, 0, token, alice, bob, 9)
	e.publish(later)
	e.eventually("the later block handled", func() bool { return e.hasMessage(ep.ID, later.ID) })
	time.Sleep(10 * e.cfg.Process.ReleaseInterval) // the releaser settles the head meanwhile
	if h := ht.safeHead(); h >= lost.Block.Number {
		t.Fatalf("safe head %d while block %d's read is lost (pending, handled by no one)", h, lost.Block.Number)
	}

	e.dropUntil(name, "the lost read's event handled", func() bool { return e.hasMessage(ep.ID, lost.ID) })
	e.eventually("stream drained", e.drained)
	e.eventually("the safe head past the recovered block", func() bool { return ht.safeHead() == later.Block.Number })
	if n := e.count(ep.ID); n != 3 {
		t.Fatalf("%d messages, want 3", n)
	}
}

// A worker whose read failed looks for lost reads in the consumer's
// pending list, which it shares with its sibling workers: a read a sibling
// has been handling for longer than lostReadIdle (hung here, as in a
// Postgres outage) is not taken from it, so it is handled once (one
// delivery job), while the lost read beside it is recovered.
func TestLostReadRecoveryLeavesSiblingsReadsAlone(t *testing.T) {
	e := newEnv(t)
	e.cfg.Process.ClaimIdle = time.Minute
	e.cfg.Process.Workers = max(2, e.cfg.Process.Workers)
	ep := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}})
	slow := transfer("ls", 2, 0, token, alice, bob, 2)
	hung, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	name := "process-under-test-" + randHex(4)
	e.startNamed(name, func(m *Module) {
		m.beforeHandle = func(ctx context.Context, entries []rueidis.XRangeEntry) {
			for _, en := range entries {
				if en.FieldValues["id"] == slow.ID {
					first := false
					once.Do(func() { first = true })
					if first { // only the first handling hangs
						close(hung)
						select {
						case <-release:
						case <-ctx.Done():
						}
					}
					return
				}
			}
		}
	})
	e.publish(transfer("ls", 1, 0, token, alice, bob, 1))
	e.eventually("the first block handled", func() bool { return e.count(ep.ID) == 1 && e.pending() == 0 })
	e.publish(slow)
	select {
	case <-hung:
	case <-time.After(30 * time.Second):
		t.Fatal("no worker read the slow event")
	}
	time.Sleep(lostReadIdle) // the slow read is as idle as a lost one
	lost := transfer("ls", 3, 0, token, alice, bob, 3)
	e.loseRead(lost)

	e.dropUntil(name, "the lost read's event handled", func() bool { return e.hasMessage(ep.ID, lost.ID) })
	if e.hasMessage(ep.ID, slow.ID) {
		t.Fatal("the read a sibling worker is handling was taken and handled again")
	}
	close(release)
	e.eventually("stream drained", e.drained)
	jobs := e.jobs()
	for _, m := range e.messages(ep.ID) {
		if jobs[m.ID] != 1 {
			t.Errorf("message of %s has %d delivery jobs, want 1 (handled once)", m.EventID, jobs[m.ID])
		}
	}
	if n := e.count(ep.ID); n != 3 {
		t.Fatalf("%d messages, want 3", n)
	}
}

// startNamed starts the module on a Redis client whose connections are
// named name (for testenv.DropRedis); e.rdb stays the test's own.
func (e *env) startNamed(name string, mut ...func(*Module)) *running {
	e.t.Helper()
	own := e.rdb
	e.rdb = testenv.NamedRedis(e.t, name)
	defer func() { e.rdb = own }()
	return e.start(mut...)
}

// loseRead adds ev to the chain's stream and reads it as the module's
// consumer in one transaction on the test's own connection: Redis carried
// the read out, and its answer reached no worker (their blocked reads are
// woken after it, with nothing left to read).
func (e *env) loseRead(ev hook.Event) {
	e.t.Helper()
	before := e.pending()
	f, err := ev.Fields()
	if err != nil {
		e.t.Fatal(err)
	}
	key, b := e.keys.Events(testChain), e.rdb.B()
	for _, res := range e.rdb.DoMulti(context.Background(),
		b.Multi().Build(),
		b.Xadd().Key(key).Id("*").FieldValue().FieldValue("id", f["id"]).FieldValue("type", f["type"]).FieldValue("event", f["event"]).Build(),
		b.Xreadgroup().Group(Group, e.cfg.Process.Consumer).Count(10).Streams().Key(key).Id(">").Build(),
		b.Exec().Build()) {
		if err := res.Error(); err != nil {
			e.t.Fatal(err)
		}
	}
	if n := e.pending(); n != before+1 {
		e.t.Fatalf("%d entries pending, want %d: the one read as the module's consumer added", n, before+1)
	}
}

// dropUntil drops the module's Redis connections (named name) until done,
// at most every 3 s: a worker looks for a lost read lostReadIdle after its
// last failed read, so dropping more often would only delay it. More than
// one drop is needed when no worker was inside a read at the first.
func (e *env) dropUntil(name, what string, done func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var killed int64
	var next time.Time
	for !done() {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not within 15 s of the read whose answer was lost (%d connections dropped)", what, killed)
		}
		if time.Now().After(next) {
			killed += testenv.DropRedis(e.t, e.rdb, name)
			next = time.Now().Add(3 * time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if killed == 0 {
		e.t.Fatal("no connection of the module was dropped: the test proves nothing")
	}
}

func (e *env) hasMessage(endpointID, eventID string) bool {
	for _, m := range e.messages(endpointID) {
		if m.EventID == eventID {
			return true
		}
	}
	return false
}

// Worker 0's reclaim of entries idle past ClaimIdle (a dead consumer's)
// leaves alone a read a sibling worker has in hand however long its
// handling takes: the workers share the consumer name, so XAUTOCLAIM
// returns it too.
func TestIdleReclaimLeavesSiblingsReadsAlone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	m, err := New(module.Deps{Config: e.cfg, Pool: e.pool, Redis: e.rdb, Log: zap.NewNop(), Registerer: prometheus.NewRegistry()},
		Options{Chains: e.chains})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ensureGroup(ctx, testChain); err != nil {
		t.Fatal(err)
	}
	e.loseRead(transfer("ir", 1, 0, token, alice, bob, 1)) // pending with this process's consumer
	key := e.keys.Events(testChain)
	entries, err := m.read(ctx, key, "0", 0)
	if err != nil || len(entries) != 1 {
		t.Fatalf("own pending entries %v: %v", entries, err)
	}
	hands := m.hands[testChain]
	hands.set(1, entries) // a sibling is handling it
	time.Sleep(e.cfg.Process.ClaimIdle + 100*time.Millisecond)
	got, _, err := m.reclaimIdle(ctx, key, "0-0", hands)
	if err != nil || len(got) != 0 {
		t.Fatalf("reclaimed %v (%v), want nothing: a sibling has it in hand", got, err)
	}
	hands.set(1, nil) // the sibling is gone without acknowledging it
	time.Sleep(e.cfg.Process.ClaimIdle + 100*time.Millisecond)
	got, _, err = m.reclaimIdle(ctx, key, "0-0", hands)
	if err != nil || len(got) != 1 || got[0].ID != entries[0].ID {
		t.Fatalf("reclaimed %v (%v), want the idle entry %s", got, err, entries[0].ID)
	}
}
