package config

import (
	"testing"
	"time"
)

func TestRangeChecksWordTheirBoundsAsAConfigFileDoes(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string // "" for no error
	}{
		{atLeast("a.b", 5, 1), ""},
		{atLeast("a.b", 0, 1), "a.b: must be at least 1, got 0"},
		{atLeast("a.d", 30*time.Second, time.Minute), "a.d: must be at least 1m, got 30s"},
		{atLeast("a.d", time.Millisecond, 500*time.Millisecond), "a.d: must be at least 500ms, got 1ms"},
		{within("a.w", 2*time.Hour, 10*time.Millisecond, time.Hour), "a.w: must be 10ms..1h, got 2h0m0s"},
		{within("a.n", uint64(7), 1, 7), ""},
		{positive("a.p", time.Duration(0)), "a.p: must be positive, got 0s"},
		{notNegative("a.n", -1), "a.n: must not be negative, got -1"},
		{orMore("a.r", -2, "off"), "a.r: must be 0 (off) or more, got -2"},
		{failIf(false, "never"), ""},
		{failIf(true, "a.f: %d", 3), "a.f: 3"},
	} {
		got := ""
		if c.err != nil {
			got = c.err.Error()
		}
		if got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
	if s := limit(90 * time.Minute); s != "1h30m" {
		t.Errorf("limit(90m) = %q, want 1h30m", s)
	}
}
