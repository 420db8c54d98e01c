// Package backpressure holds a producer back while the backlog of its
// consumer is at a limit: ingest before committing while process has that
// many events unacknowledged, process before reading while deliver has that
// many jobs queued. The backlog stays where it is durable (the chain, a
// stream), never in memory.
package backpressure

import (
	"context"
	"sync"
	"time"

	"github.com/ethhook/ethhook/internal/sleep"
)

// Gate decides whether the producer may go on. Its zero value is not
// usable: set Limit, Read and Changed. Safe for concurrent use.
type Gate struct {
	// Limit is the backlog at which the producer waits.
	Limit int64
	// Read returns the consumer's backlog; ok false when it cannot be
	// known (an error, no consumer yet), which never holds the producer.
	Read func(ctx context.Context) (n int64, ok bool)
	// Changed is told when the producer starts (held) and stops waiting,
	// to log it and set a gauge.
	Changed func(held bool, backlog int64)

	mu   sync.Mutex
	at   time.Time // when Read last ran
	last int64     // what it returned (plus Added since)
	held bool
}

// readEvery is how often the backlog is read while it was under half the
// limit; nearer, it is read on every Wait.
const readEvery = 250 * time.Millisecond

// pollEvery is how often a held producer reads the backlog again.
const pollEvery = 500 * time.Millisecond

// Added tells the gate the producer just added n to the backlog, so a
// backlog that crossed half the limit is read before the next Wait passes.
func (g *Gate) Added(n int64) {
	g.mu.Lock()
	g.last += n
	g.mu.Unlock()
}

// Wait returns once the backlog is under the limit, false if ctx ended
// first.
func (g *Gate) Wait(ctx context.Context) bool {
	for {
		g.mu.Lock()
		if g.held || time.Since(g.at) >= readEvery || g.last >= g.Limit/2 {
			n, ok := g.Read(ctx)
			g.at = time.Now()
			if !ok {
				n = 0
			}
			g.last = n
			if hold := n >= g.Limit; hold != g.held {
				g.held = hold
				g.Changed(hold, n)
			}
		}
		held := g.held
		g.mu.Unlock()
		if !held {
			return true
		}
		if !sleep.For(ctx, pollEvery) {
			return false
		}
	}
}
