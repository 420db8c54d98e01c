package deliver

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"
)

// goroutineID is the running goroutine's number, from its stack header.
func goroutineID() string {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	f := bytes.Fields(b)
	return string(f[1])
}

// TestSendersRunTheNextAttemptOnTheWaitingGoroutineAndStopWithTheContext:
// an attempt after another runs on the goroutine the first ran on (its
// stack already grown), not a new one; once the context ends, waiting
// senders exit and the next attempt starts a new one.
func TestSendersRunTheNextAttemptOnTheWaitingGoroutineAndStopWithTheContext(t *testing.T) {
	var s senders
	ctx, cancel := context.WithCancel(context.Background())
	on := func(ctx context.Context) string {
		got := make(chan string, 1)
		s.run(ctx, func() { got <- goroutineID() })
		return <-got
	}
	first := on(ctx)
	reused := false
	for range 200 {
		time.Sleep(5 * time.Millisecond) // let the sender get back to waiting
		if on(ctx) == first {
			reused = true
			break
		}
	}
	if !reused {
		t.Fatal("every attempt ran on a new goroutine")
	}
	cancel()
	time.Sleep(20 * time.Millisecond)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	for range 50 {
		if on(ctx2) == first {
			t.Fatal("a sender kept waiting after its context ended")
		}
		time.Sleep(time.Millisecond)
	}
}
