package app

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// recorder collects start and stop events of test modules in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// testModule runs until cancelled, optionally failing or panicking after
// a delay, or ignoring cancellation to exceed the grace period.
type testModule struct {
	name      string
	rec       *recorder
	failAfter time.Duration
	panics    bool
	stubborn  bool
	ready     atomic.Bool
	stopDelay time.Duration
}

func (m *testModule) Name() string { return m.name }
func (m *testModule) Ready() bool  { return m.ready.Load() }
func (m *testModule) Run(ctx context.Context) error {
	m.rec.add("start " + m.name)
	m.ready.Store(true)
	var fail <-chan time.Time
	if m.failAfter > 0 {
		fail = time.After(m.failAfter)
	}
	select {
	case <-fail:
		if m.panics {
			panic("boom in " + m.name)
		}
		return errors.New("disk on fire")
	case <-ctx.Done():
	}
	if m.stubborn {
		time.Sleep(time.Hour)
	}
	time.Sleep(m.stopDelay)
	m.rec.add("stop " + m.name)
	return ctx.Err()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSupervisorStartsInOrderAndStopsInReverseOnCancel(t *testing.T) {
	rec := &recorder{}
	sup := &Supervisor{Log: zap.NewNop(), Grace: 10 * time.Second}
	for _, n := range []string{"a", "b", "c"} {
		// Later modules take longer to stop, so a parallel stop would
		// finish out of order.
		sup.Add(&testModule{name: n, rec: rec, stopDelay: time.Duration(n[0]-'a') * 20 * time.Millisecond})
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- sup.Run(ctx) }()
	waitFor(t, "all started", func() bool { return len(sup.NotReady()) == 0 })
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("clean drain returned %v", err)
	}
	got := rec.list()
	stops := []string{}
	for _, e := range got {
		if strings.HasPrefix(e, "stop") {
			stops = append(stops, e)
		}
	}
	if strings.Join(stops, ",") != "stop c,stop b,stop a" {
		t.Fatalf("stop order %v (all events %v)", stops, got)
	}
}

func TestSupervisorFirstFailureStopsTheRestAndNamesTheModule(t *testing.T) {
	rec := &recorder{}
	sup := &Supervisor{Log: zap.NewNop(), Grace: 10 * time.Second}
	sup.Add(&testModule{name: "a", rec: rec})
	sup.Add(&testModule{name: "broken", rec: rec, failAfter: 50 * time.Millisecond})
	sup.Add(&testModule{name: "c", rec: rec})
	err := sup.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "module broken failed: disk on fire") {
		t.Fatalf("err = %v", err)
	}
	got := strings.Join(rec.list(), ",")
	if !strings.Contains(got, "stop c") || !strings.Contains(got, "stop a") || strings.Index(got, "stop c") > strings.Index(got, "stop a") {
		t.Fatalf("the others were not stopped in reverse: %s", got)
	}
}

func TestSupervisorTurnsAPanicIntoAFailure(t *testing.T) {
	rec := &recorder{}
	sup := &Supervisor{Log: zap.NewNop(), Grace: 10 * time.Second}
	sup.Add(&testModule{name: "ok", rec: rec})
	sup.Add(&testModule{name: "panicky", rec: rec, failAfter: 20 * time.Millisecond, panics: true})
	err := sup.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "module panicky failed: panic: boom in panicky") {
		t.Fatalf("err = %v", err)
	}
}

func TestSupervisorReportsModulesThatOutliveTheGrace(t *testing.T) {
	rec := &recorder{}
	sup := &Supervisor{Log: zap.NewNop(), Grace: 200 * time.Millisecond}
	sup.Add(&testModule{name: "polite", rec: rec})
	sup.Add(&testModule{name: "stubborn", rec: rec, stubborn: true})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- sup.Run(ctx) }()
	waitFor(t, "started", func() bool { return len(sup.NotReady()) == 0 })
	cancel()
	err := <-errc
	if err == nil || !strings.Contains(err.Error(), "grace of 200ms exceeded") || !strings.Contains(err.Error(), "stubborn") {
		t.Fatalf("err = %v", err)
	}
}

func TestSupervisorNotReadyListsUnreadyModulesAndEverythingWhileDraining(t *testing.T) {
	rec := &recorder{}
	sup := &Supervisor{Log: zap.NewNop(), Grace: 10 * time.Second}
	slow := &testModule{name: "slow", rec: rec}
	sup.Add(&testModule{name: "fast", rec: rec})
	sup.Add(slow)
	if got := sup.NotReady(); len(got) != 2 {
		t.Fatalf("before start: %v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go sup.Run(ctx)
	waitFor(t, "ready", func() bool { return len(sup.NotReady()) == 0 })
	slow.ready.Store(false)
	if got := sup.NotReady(); len(got) != 1 || got[0] != "slow" {
		t.Fatalf("not ready = %v", got)
	}
}
