package sleep

import (
	"testing"
	"time"
)

func TestBackoffDoublesUpToMax(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}
	for i, w := range want {
		if got := b.After(i); got != w*time.Millisecond {
			t.Fatalf("After(%d) = %s, want %s", i, got, w*time.Millisecond)
		}
	}
	if got := b.After(1000); got != 5*time.Second {
		t.Fatalf("After(1000) = %s: a long outage must stay at Max", got)
	}
	unbounded := Backoff{Min: 100 * time.Millisecond}
	if got := unbounded.After(4); got != 1600*time.Millisecond {
		t.Fatalf("no Max: After(4) = %s, want 1.6s", got)
	}
	if got := unbounded.After(200); got <= 0 {
		t.Fatalf("no Max: After(200) = %s overflowed", got)
	}
	if (Backoff{}).After(3) != 0 {
		t.Fatal("a zero Backoff waits nothing")
	}
}

func TestBackoffDoublesWithJitterUpToMax(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 60 * time.Second, Jitter: true}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for i, w := range want {
		d := b.Next()
		if d < w*time.Second/2 || d > w*time.Second {
			t.Fatalf("step %d: %s not in [%s, %s]", i, d, w*time.Second/2, w*time.Second)
		}
	}
	b.Reset()
	if d := b.Next(); d > time.Second {
		t.Fatalf("after reset: %s", d)
	}
}
