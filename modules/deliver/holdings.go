package deliver

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// holdings keeps the process-wide caps on what deliver holds in memory:
// the messages it claimed and has not finished with (queued in a lane, in
// flight, or sent and waiting for the writer), at most maxHeld, and their
// payloads still in memory (a payload is dropped once its attempt is made),
// at most maxBytes. Whoever claims messages (intake for the jobs it read, a
// lane pulling its backlog) first reserves room here, then settles the
// reservation with what it actually claimed; so under overload the backlog
// waits in Redis and Postgres, not in memory.
//
// The heartbeat renews the leases of held messages only: a claim whose
// answer was lost (the connection dropped after its commit) leaves a lease
// nobody here holds, which must run out for the sweeper.
type holdings struct {
	maxHeld  int
	maxBytes int64
	gauge    prometheus.Gauge

	mu       sync.Mutex
	ids      map[string]time.Time // held message -> its lease as last set
	bytes    int64
	reserved int   // slots reserved by claims in flight
	avg      int64 // running average payload size, to turn bytes into slots
	changed  chan struct{}
}

func newHoldings(maxHeld, maxMiB int, gauge prometheus.Gauge) *holdings {
	return &holdings{maxHeld: maxHeld, maxBytes: int64(maxMiB) << 20, gauge: gauge,
		ids: map[string]time.Time{}, avg: 64 << 10, changed: make(chan struct{})}
}

// reserve takes up to want slots: no more than the messages left under
// maxHeld, nor the payloads of the running average size (64 KiB until
// payloads have been seen) that fit under maxBytes. The byte cap can be
// overshot by what one claim's payloads exceed that average. 0 means no room.
func (h *holdings) reserve(want int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := h.roomLocked(want)
	h.reserved += k
	return k
}

func (h *holdings) roomLocked(want int) int {
	n := h.maxHeld - len(h.ids) - h.reserved
	b := h.maxBytes - h.bytes - int64(h.reserved)*h.avg
	if n <= 0 || b <= 0 || want <= 0 {
		return 0
	}
	return int(min(int64(want), int64(n), b/max(h.avg, 1)+1))
}

// settle turns a reservation of n slots into the jobs claimed with it
// (len(jobs) <= n); the rest of the reservation is returned.
func (h *holdings) settle(n int, jobs []*job) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reserved -= n
	for _, j := range jobs {
		h.ids[j.id] = j.lease
		h.bytes += int64(len(j.payload))
		h.avg += (int64(len(j.payload)) - h.avg) / 16
	}
	if len(jobs) < n {
		h.wakeLocked()
	}
	h.gauge.Set(float64(len(h.ids)))
}

// release forgets finished messages (ids) and payload bytes no longer in
// memory.
func (h *holdings) release(ids []string, bytes int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		delete(h.ids, id)
	}
	h.bytes -= bytes
	h.gauge.Set(float64(len(h.ids)))
	h.wakeLocked()
}

// wakeLocked tells every waiter that room may have appeared.
func (h *holdings) wakeLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// roomChanged is closed when room may have appeared; take it before
// trying to reserve, so a release in between is not missed.
func (h *holdings) roomChanged() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

// waitRoom waits until more messages may be held and says how many (at
// most want), without reserving them; false when ctx ends. Intake uses it to
// size a read of the jobs stream: whatever does not fit when the jobs are
// handled becomes a backlog hint for their lanes.
func (h *holdings) waitRoom(ctx context.Context, want int) (int, bool) {
	for {
		h.mu.Lock()
		changed := h.changed
		n := h.roomLocked(want)
		h.mu.Unlock()
		if n > 0 {
			return n, true
		}
		t := time.NewTimer(time.Second) // a safety net, not the mechanism
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, false
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// expiring lists the held messages whose lease ends before t.
func (h *holdings) expiring(t time.Time) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ids []string
	for id, lease := range h.ids {
		if lease.Before(t) {
			ids = append(ids, id)
		}
	}
	return ids
}

// renewed notes the new lease of held messages (those still held).
func (h *holdings) renewed(ids []string, until time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		if _, ok := h.ids[id]; ok {
			h.ids[id] = until
		}
	}
}

func (h *holdings) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ids)
}
