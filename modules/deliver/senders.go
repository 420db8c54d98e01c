package deliver

import (
	"context"
	"sync"
	"time"
)

// senders runs attempts on goroutines that outlive them by senderLinger,
// waiting for the next: an attempt started on a fresh goroutine paid for
// growing its stack (copied at each doubling) to the depth of an HTTP round
// trip, on every webhook. There are never many more senders than attempts
// in flight (MaxInFlight bounds those): a new one starts only when none is
// waiting, and a waiting one exits after senderLinger or when its context
// ends. The zero value is ready to use.
type senders struct {
	once sync.Once
	q    chan func() // unbuffered: a send succeeds only when a sender waits
}

const senderLinger = time.Second

// run calls f on a waiting sender, or on a new one.
func (s *senders) run(ctx context.Context, f func()) {
	s.once.Do(func() { s.q = make(chan func()) })
	select {
	case s.q <- f:
	default:
		go s.loop(ctx, f)
	}
}

func (s *senders) loop(ctx context.Context, f func()) {
	t := time.NewTimer(senderLinger)
	defer t.Stop()
	for {
		f()
		t.Reset(senderLinger)
		select {
		case f = <-s.q:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
