package deliver

import "time"

// breaker is one endpoint's circuit breaker. Closed, it lets everything
// through; after threshold consecutive failures it opens and nothing is sent
// until the cooldown ends; then one probe goes out (half-open): a success
// closes it, a failure reopens it with a doubled cooldown (at most maxCooldown).
type breaker struct {
	threshold int
	base      time.Duration
	cooldown  time.Duration
	fails     int
	open      bool
	openUntil time.Time
	probing   bool
}

const maxCooldown = 5 * time.Minute

// allow reports whether a request may start now; if not, how long to wait
// (0 = until a probe in flight finishes).
func (b *breaker) allow(now time.Time) (bool, time.Duration) {
	if !b.open {
		return true, 0
	}
	if now.Before(b.openUntil) {
		return false, b.openUntil.Sub(now)
	}
	if b.probing {
		return false, 0
	}
	b.probing = true
	return true, 0
}

// record notes an attempt's outcome and reports whether the breaker opened
// (+1) or closed (-1) because of it.
func (b *breaker) record(ok bool, now time.Time) int {
	if ok {
		b.fails = 0
		b.probing = false
		b.cooldown = b.base
		if b.open {
			b.open = false
			return -1
		}
		return 0
	}
	b.fails++
	if b.open {
		if b.probing {
			b.probing = false
			b.cooldown = min(b.cooldown*2, maxCooldown)
			b.openUntil = now.Add(b.cooldown)
		}
		return 0
	}
	if b.fails >= b.threshold {
		b.open = true
		b.cooldown = b.base
		b.openUntil = now.Add(b.cooldown)
		return 1
	}
	return 0
}
