package backpressure

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestGateHoldsAtTheLimitAndReleasesBelowIt(t *testing.T) {
	var backlog, reads atomic.Int64
	var changes []bool
	g := &Gate{
		Limit:   100,
		Read:    func(context.Context) (int64, bool) { reads.Add(1); return backlog.Load(), true },
		Changed: func(held bool, _ int64) { changes = append(changes, held) },
	}
	ctx := context.Background()
	if !g.Wait(ctx) {
		t.Fatal("empty backlog held the producer")
	}
	// Far under half the limit, the last reading is trusted for a while.
	backlog.Store(100)
	r := reads.Load()
	if !g.Wait(ctx) || reads.Load() != r {
		t.Fatal("the backlog was read again right away while it was far under the limit")
	}
	// What the producer added counts: past half the limit, every Wait reads.
	g.Added(60)
	done := make(chan bool)
	go func() { done <- g.Wait(ctx) }()
	time.Sleep(50 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("Wait passed with the backlog at the limit")
	default:
	}
	backlog.Store(99)
	if !<-done {
		t.Fatal("Wait ended without the backlog going under the limit")
	}
	if len(changes) != 2 || !changes[0] || changes[1] {
		t.Fatalf("changes %v, want [held, released]", changes)
	}

	// Held, Wait ends with its context.
	backlog.Store(100)
	g.Added(100)
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if g.Wait(cctx) {
		t.Fatal("Wait passed while held")
	}
}

func TestGateUnknownBacklogNeverHolds(t *testing.T) {
	g := &Gate{Limit: 10, Read: func(context.Context) (int64, bool) { return 1 << 40, false },
		Changed: func(bool, int64) { t.Fatal("held on an unknown backlog") }}
	g.Added(100)
	if !g.Wait(context.Background()) {
		t.Fatal("held on an unknown backlog")
	}
}
