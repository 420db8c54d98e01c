// Package retry decides what happens after a delivery attempt: which
// outcomes are retried, when the next attempt is due (the schedule with
// jitter, or the receiver's Retry-After within bounds), and when a message
// is dead.
package retry

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Retryable reports whether an HTTP status is worth another attempt:
// 408, 425, 429 and every 5xx. 409 is retried too (DESIGN: 4xx other than
// 408, 409, 425 and 429 are final).
func Retryable(status int) bool {
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusConflict,
		status == http.StatusTooEarly, status == http.StatusTooManyRequests:
		return true
	case status >= 500 && status <= 599:
		return true
	}
	return false
}

// Policy computes next attempt times.
type Policy struct {
	Schedule      []time.Duration // delay before attempt n+1 (Schedule[0] is the first attempt's delay)
	Jitter        float64         // fraction, 0.2 = ±20%
	MinRetryAfter time.Duration   // Retry-After below this is raised to it
	MaxRetryAfter time.Duration   // Retry-After above this is capped
	Rand          func() float64  // [0,1); nil = math/rand/v2
}

// Next returns the delay before the attempt that follows attempt number
// `done` (1-based, counted since the schedule started), and false when the
// schedule is exhausted. retryAfter (0 = none) replaces the scheduled delay,
// clamped to [MinRetryAfter, MaxRetryAfter] and without jitter.
func (p Policy) Next(done int, retryAfter time.Duration) (time.Duration, bool) {
	if done >= len(p.Schedule) || done < 0 {
		return 0, false
	}
	if retryAfter > 0 {
		if retryAfter < p.MinRetryAfter {
			retryAfter = p.MinRetryAfter
		}
		if p.MaxRetryAfter > 0 && retryAfter > p.MaxRetryAfter {
			retryAfter = p.MaxRetryAfter
		}
		return retryAfter, true
	}
	d := p.Schedule[done]
	if p.Jitter > 0 && d > 0 {
		r := p.Rand
		if r == nil {
			r = rand.Float64
		}
		f := 1 + p.Jitter*(2*r()-1)
		d = time.Duration(float64(d) * f)
	}
	return d, true
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > 365*24*3600 {
			n = 365 * 24 * 3600
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
