package sleep

import (
	"context"
	"testing"
	"time"
)

func TestForReportsWhetherTheWaitPassed(t *testing.T) {
	if !For(context.Background(), time.Millisecond) {
		t.Fatal("a full wait reported as cut short")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if For(ctx, time.Hour) {
		t.Fatal("a wait on an ended context reported as passed")
	}
	if For(ctx, 0) || !For(context.Background(), 0) {
		t.Fatal("a zero wait must report the context's state")
	}
}
