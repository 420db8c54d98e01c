package outage

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestOutageLogsOnceWhenItStartsAndOnceWhenItEnds(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	o := New(zap.New(core), "redis")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	o.now = func() time.Time { return now }
	boom := errors.New("connection refused")

	o.OK() // healthy: nothing to say
	for i := range 50 {
		op := "promote"
		if i%5 == 0 {
			op = "rate limit"
		}
		o.Fail(op, boom)
		now = now.Add(100 * time.Millisecond)
		if i%10 == 0 {
			o.OK() // a success between failures (a reconnect) does not end it
		}
	}
	if !o.Down() {
		t.Fatal("outage ended by a success within calm of a failure")
	}
	now = now.Add(o.calm)
	o.OK()
	o.OK()
	if o.Down() {
		t.Fatal("outage did not end after calm")
	}
	all := logs.All()
	if len(all) != 2 {
		t.Fatalf("%d log lines, want 2: %v", len(all), all)
	}
	start, end := all[0], all[1]
	if start.Level != zapcore.WarnLevel || start.Message != "redis unavailable" || start.ContextMap()["operation"] != "rate limit" {
		t.Fatalf("start line: %v %q %v", start.Level, start.Message, start.ContextMap())
	}
	f := end.ContextMap()
	if end.Level != zapcore.InfoLevel || end.Message != "redis available again" || f["failures"] != int64(50) ||
		f["failures.promote"] != int64(40) || f["failures.rate limit"] != int64(10) {
		t.Fatalf("end line: %v %q %v", end.Level, end.Message, f)
	}

	// The next outage is logged again.
	o.Fail("promote", boom)
	if n := logs.Len(); n != 3 {
		t.Fatalf("second outage: %d lines, want 3", n)
	}
}
