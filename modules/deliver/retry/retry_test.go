package retry

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryableStatuses(t *testing.T) {
	for code, want := range map[int]bool{
		200: false, 301: false, 400: false, 401: false, 403: false, 404: false, 410: false, 422: false,
		408: true, 409: true, 425: true, 429: true, 500: true, 502: true, 503: true, 504: true, 599: true,
	} {
		if got := Retryable(code); got != want {
			t.Errorf("Retryable(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestNextFollowsScheduleWithinJitterAndEnds(t *testing.T) {
	sched := []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute}
	for _, r := range []float64{0, 0.5, 0.999} {
		p := Policy{Schedule: sched, Jitter: 0.2, Rand: func() float64 { return r }}
		for done := 1; done < len(sched); done++ {
			d, ok := p.Next(done, 0)
			lo, hi := time.Duration(float64(sched[done])*0.8), time.Duration(float64(sched[done])*1.2)
			if !ok || d < lo || d > hi {
				t.Errorf("rand %v: Next(%d) = %v,%v, want within [%v,%v]", r, done, d, ok, lo, hi)
			}
		}
		if _, ok := p.Next(len(sched), 0); ok {
			t.Errorf("Next after the last attempt must report exhaustion")
		}
	}
	p := Policy{Schedule: sched, Jitter: 0.2, Rand: func() float64 { return 0.5 }}
	if d, _ := p.Next(1, 0); d != 5*time.Second {
		t.Errorf("middle jitter gives %v, want exactly 5s", d)
	}
}

func TestRetryAfterReplacesScheduleWithinBounds(t *testing.T) {
	p := Policy{Schedule: []time.Duration{0, 5 * time.Minute, time.Hour}, Jitter: 0.2, MinRetryAfter: time.Second, MaxRetryAfter: time.Hour}
	cases := []struct {
		ra, want time.Duration
	}{{7 * time.Second, 7 * time.Second}, {time.Millisecond, time.Second}, {48 * time.Hour, time.Hour}}
	for _, c := range cases {
		if d, ok := p.Next(1, c.ra); !ok || d != c.want {
			t.Errorf("Next(1, %v) = %v, want %v", c.ra, d, c.want)
		}
	}
	if _, ok := p.Next(3, time.Second); ok {
		t.Errorf("Retry-After must not extend an exhausted schedule")
	}
}

func TestParseRetryAfterSecondsAndDate(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if d := ParseRetryAfter("120", now); d != 2*time.Minute {
		t.Errorf("seconds: %v", d)
	}
	if d := ParseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now); d != 90*time.Second {
		t.Errorf("date: %v", d)
	}
	for _, v := range []string{"", "soon", "-5", "0"} {
		if d := ParseRetryAfter(v, now); d != 0 {
			t.Errorf("ParseRetryAfter(%q) = %v, want 0", v, d)
		}
	}
}
