package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/ethhook/ethhook/internal/sleep"
)

// callPause is the wait between tries of one node call or lookup (rate
// limits, timeouts, a lagging node): 100 ms, doubling, at most 5 s.
var callPause = sleep.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}

func isTimeout(err error) bool { return errors.Is(err, context.DeadlineExceeded) }

// endpoint is one WebSocket URL of a chain with its circuit breaker: after
// breakerThreshold consecutive failed sessions it is skipped for a cooldown
// that doubles up to breakerMaxOpen; a wrong chain id opens it for
// wrongChainOpen.
type endpoint struct {
	url       string
	redacted  string
	fails     int
	openUntil time.Time
}

const (
	breakerThreshold = 3
	breakerBaseOpen  = 15 * time.Second
	breakerMaxOpen   = 5 * time.Minute
	wrongChainOpen   = 10 * time.Minute
)

func (e *endpoint) failure(now time.Time) {
	e.fails++
	if e.fails >= breakerThreshold {
		d := sleep.Backoff{Min: breakerBaseOpen, Max: breakerMaxOpen}.After(e.fails - breakerThreshold)
		e.openUntil = now.Add(d)
	}
}

func (e *endpoint) success() { e.fails, e.openUntil = 0, time.Time{} }

func (e *endpoint) refuse(now time.Time, d time.Duration) {
	e.fails = breakerThreshold
	e.openUntil = now.Add(d)
}

// pick returns the first endpoint at or after start whose breaker is
// closed or, when every breaker is open, the one closest to closing (the
// reconnect backoff paces the attempts; a lone URL is never abandoned).
func pick(eps []*endpoint, start int, now time.Time) int {
	best := -1
	for i := range eps {
		j := (start + i) % len(eps)
		if !now.Before(eps[j].openUntil) {
			return j
		}
		if best < 0 || eps[j].openUntil.Before(eps[best].openUntil) {
			best = j
		}
	}
	return best
}
