package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/internal/sleep"
)

// runLeased waits for the chain's lease (standby), then ingests while it
// holds it. It returns only when ctx is done or on an error.
func (r *chainRunner) runLeased(ctx context.Context) error {
	ttl := r.ing.LeaseTTL
	standbyLogged := false
	// Redis unreachable: wait for it here, logged once, rather than
	// returning to supervise, which logs an error per try.
	bo := sleep.Backoff{Min: r.ing.ReconnectMin, Max: r.ing.ReconnectMax, Jitter: true}
	for {
		token, err := r.st.acquire(ctx, r.holder, ttl)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.out.Redis.Fail("acquire lease", err)
			if !sleep.For(ctx, bo.Next()) {
				return nil
			}
			continue
		}
		r.out.Redis.OK()
		bo.Reset()
		if token == 0 {
			if !standbyLogged {
				r.log.Info("standby: another ingester holds the chain's lease")
				standbyLogged = true
			}
			r.mLease.Set(0)
			r.ready.Store(true)
			if !sleep.For(ctx, ttl/6) {
				return nil
			}
			continue
		}
		standbyLogged = false
		r.log.Info("lease acquired", zap.Int64("fence", token))
		err = r.holdLease(ctx, token)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, errLeaseLost) && !errors.Is(err, errFenced) {
			return err
		}
		r.mLeaseLost.Inc()
		r.log.Warn("lease lost; back to standby", zap.Error(err))
	}
}

// holdLease renews the lease in the background and ingests until the lease
// is lost or ctx is done.
func (r *chainRunner) holdLease(ctx context.Context, token int64) error {
	lctx, cancel := context.WithCancelCause(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		r.keepLease(lctx, cancel, token)
	}()
	r.mLease.Set(1)
	r.token = token
	defer func() {
		cancel(nil)
		<-renewed
		r.mLease.Set(0)
		r.ready.Store(false)
		if !r.m.noRelease {
			rctx, c := context.WithTimeout(context.Background(), 2*time.Second)
			_ = r.st.release(rctx, r.holder)
			c()
		}
	}()
	err := r.active(lctx)
	if cause := context.Cause(lctx); cause != nil && ctx.Err() == nil && errors.Is(cause, errLeaseLost) {
		return cause
	}
	return err
}

// keepLease renews the lease every quarter TTL until ctx is done, on its
// own goroutine and its own dedicated Redis connection, so that neither
// the fetch/commit path nor a large pipelined commit can delay it. It
// cancels with errLeaseLost only when the lease is definitely another's
// (renewal answers "not yours"): a renewal that fails is retried, because
// commits are fenced, a writer that cannot reach Redis can do no harm. A
// lease that lapsed anyway and that nobody took is taken again with the
// same fencing token (see lease.lua).
func (r *chainRunner) keepLease(ctx context.Context, cancel context.CancelCauseFunc, token int64) {
	ttl := r.ing.LeaseTTL
	every := ttl / 4
	var dc rueidis.DedicatedClient
	release := func() {}
	defer func() { release() }()
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if dc == nil {
			dc, release = r.m.rdb.Dedicate()
		}
		rctx, c := context.WithTimeout(ctx, every)
		res, err := r.st.renew(rctx, dc, r.holder, ttl, token)
		c()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				r.log.Warn("lease renewal failed; retrying", zap.Error(err))
			}
			failing = true
			release() // a fresh connection for the next attempt
			dc, release = nil, func() {}
			continue
		case res == leaseRetaken:
			r.mLeaseRetaken.Inc()
			r.log.Warn("lease had lapsed (not renewed in time); taken again with the same fencing token", zap.Int64("fence", token))
		case res == leaseGone:
			cancel(errLeaseLost)
			return
		}
		if failing {
			r.log.Info("lease renewal works again")
			failing = false
		}
	}
}
