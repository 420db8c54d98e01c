package sleep

import (
	"math/rand/v2"
	"time"
)

// Backoff is the one doubling wait of the retry and reconnect loops: Min
// after the first failure, twice as long after each next one, never above
// Max (no bound when Max is zero). With Jitter each wait is drawn from
// [d/2, d], so that processes failing together do not retry together.
// After is pure (a loop that counts its own attempts); Next and Reset keep
// the count for a loop that does not.
type Backoff struct {
	Min, Max time.Duration
	Jitter   bool
	n        int
}

// After is the wait after attempt+1 failures (attempt 0: the first).
func (b Backoff) After(attempt int) time.Duration {
	d := b.Min
	if d <= 0 {
		return 0
	}
	for i := 0; i < attempt && (b.Max <= 0 || d < b.Max) && d < time.Duration(1<<62); i++ {
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	if b.Jitter {
		half := d / 2
		d = half + time.Duration(rand.Int64N(int64(half)+1))
	}
	return d
}

// Next is the wait after one more failure.
func (b *Backoff) Next() time.Duration {
	d := b.After(b.n)
	b.n++
	return d
}

// Reset starts over at Min (the loop succeeded).
func (b *Backoff) Reset() { b.n = 0 }
