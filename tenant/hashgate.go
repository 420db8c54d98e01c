package tenant

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ErrBusy is returned when every password-hashing slot is taken and a
// request waited too long (or found the queue full): the caller should
// answer 503 and let the client retry, not queue without bound.
var ErrBusy = errors.New("too many password checks in progress")

// Password hashing defaults: argon2id takes 19 MiB per hash, so four at once
// is ~80 MB at most however many sign-ins arrive together.
const (
	DefaultPasswordHashes = 4
	defaultHashWait       = 10 * time.Second
	hashQueuePerSlot      = 16 // waiters allowed per slot before refusing at once
)

// hashGate bounds how many password hashes (argon2id, 19 MiB each) are
// computed at once. Waiters respect their context, wait at most maxWait and
// are refused at once when the queue is already long.
type hashGate struct {
	slots    chan struct{}
	maxWait  time.Duration
	maxQueue int64
	waiting  atomic.Int64
	// hashing counts hashes being computed, for tests and metrics.
	hashing atomic.Int64
	// run computes one hash; tests replace it to observe concurrency.
	run func(f func())
}

func newHashGate(n int, maxWait time.Duration) *hashGate {
	if n < 1 {
		n = 1
	}
	return &hashGate{slots: make(chan struct{}, n), maxWait: maxWait, maxQueue: int64(n * hashQueuePerSlot),
		run: func(f func()) { f() }}
}

// do runs f (one password hash) once a slot is free.
func (g *hashGate) do(ctx context.Context, f func()) error {
	select {
	case g.slots <- struct{}{}:
	default:
		if g.waiting.Add(1) > g.maxQueue {
			g.waiting.Add(-1)
			return ErrBusy
		}
		t := time.NewTimer(g.maxWait)
		select {
		case g.slots <- struct{}{}:
			g.waiting.Add(-1)
			t.Stop()
		case <-t.C:
			g.waiting.Add(-1)
			return ErrBusy
		case <-ctx.Done():
			g.waiting.Add(-1)
			t.Stop()
			return fmt.Errorf("wait for a password check: %w", ctx.Err())
		}
	}
	defer func() { <-g.slots }()
	g.hashing.Add(1)
	defer g.hashing.Add(-1)
	g.run(f)
	return nil
}

// LimitPasswordHashing sets how many password hashes the store computes at
// once (admin.max_concurrent_logins); call it before the store is used.
func (s *Store) LimitPasswordHashing(n int) {
	s.hashes = newHashGate(n, defaultHashWait)
}

// hashPassword is HashPassword behind the gate.
func (s *Store) hashPassword(ctx context.Context, pw string) (string, error) {
	var h string
	err := s.hashes.do(ctx, func() { h = HashPassword(pw) })
	return h, err
}

// checkPassword is CheckPassword behind the gate.
func (s *Store) checkPassword(ctx context.Context, encoded, pw string) (bool, error) {
	var ok bool
	err := s.hashes.do(ctx, func() { ok = CheckPassword(encoded, pw) })
	return ok, err
}
