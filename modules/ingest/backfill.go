package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/modules/ingest/rpc"
)

// backfill commits blocks from..to with ranged eth_getLogs in chunks sized
// by the chain's log density (see span). head is the head being synced to:
// blocks within the window of it keep their entries for reorg removal.
// Fetching runs ahead of committing (prefetch) so the node and Redis work
// at the same time, bounded by bytes in flight, not only by chunks.
func (r *chainRunner) backfill(ctx context.Context, from, to, head uint64) error {
	var storeFrom uint64
	if head+1 > r.keep {
		storeFrom = head + 1 - r.keep
	}
	if to >= from {
		r.log.Info("backfill", zap.Uint64("from", from), zap.Uint64("to", to))
	}
	for from <= to {
		next, err := r.backfillRun(ctx, from, to, storeFrom)
		if err != nil {
			return err
		}
		from = next
	}
	return nil
}

type chunk struct {
	blocks []*block
	bytes  int64 // estimated answer bytes (in-flight accounting)
	err    error
}

// inflight bounds the estimated bytes of fetched, not yet committed chunks.
type inflight struct {
	limit int64
	mu    sync.Mutex
	n     int64
	freed chan struct{}
}

func newInflight(limit int64) *inflight { return &inflight{limit: limit, freed: make(chan struct{})} }

// wait blocks until fewer than limit bytes are in flight.
func (f *inflight) wait(ctx context.Context) bool {
	for {
		f.mu.Lock()
		if f.n < f.limit {
			f.mu.Unlock()
			return true
		}
		ch := f.freed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

func (f *inflight) add(n int64) {
	f.mu.Lock()
	f.n += n
	f.mu.Unlock()
}

func (f *inflight) done(n int64) {
	f.mu.Lock()
	f.n -= n
	close(f.freed)
	f.freed = make(chan struct{})
	f.mu.Unlock()
}

// backfillRun commits prefetched chunks until to, or until the chain
// below a chunk changed (then it unwinds and returns where to go on).
func (r *chainRunner) backfillRun(ctx context.Context, from, to, storeFrom uint64) (uint64, error) {
	pctx, cancel := context.WithCancel(ctx)
	chunks := make(chan chunk, 1)
	// At most two answers' worth fetched ahead of the commit; the fetch of
	// a third starts only once the commit in progress is done.
	fl := newInflight(2 * answerBudget(r.ing.MaxMessageBytes))
	go r.prefetch(pctx, from, to, chunks, fl)
	defer func() {
		cancel()
		for range chunks { // wait for the prefetcher to finish
		}
	}()
	for c := range chunks {
		if c.err != nil {
			return 0, c.err
		}
		if r.cur.Set && c.blocks[0].ParentHash != r.cur.Hash {
			// The chain below this chunk changed: stop prefetching, unwind.
			cancel()
			for range chunks {
			}
			if err := r.reorg(ctx, c.blocks[0].header); err != nil {
				return 0, err
			}
			return r.cur.Number + 1, nil
		}
		err := r.commit(ctx, c.blocks, storeFrom)
		fl.done(c.bytes)
		if err != nil {
			return 0, err
		}
		r.mBack.Add(float64(len(c.blocks)))
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	return to + 1, nil
}

// maxWeightFailures is how many timeouts in a row a shrinking backfill
// tolerates before it gives the session up.
const maxWeightFailures = 6

// prefetch fetches from..to in density-sized chunks into out, closing it
// at the end; a failure is sent as the last chunk.
func (r *chainRunner) prefetch(ctx context.Context, from, to uint64, out chan<- chunk, fl *inflight) {
	defer close(out)
	inconsistent, timeouts := 0, 0
	for from <= to && ctx.Err() == nil {
		if !fl.wait(ctx) {
			return
		}
		end := min(from+r.span.next()-1, to)
		blocks, bytes, err := r.fetchRange(ctx, from, end)
		tried := end - from + 1
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return
		case errors.Is(err, rpc.ErrTooLarge):
			r.span.tooLarge(tried, r.ing.MaxMessageBytes)
			r.log.Warn("eth_getLogs answer above max_message_bytes; shrinking", zap.Uint64("block", from),
				zap.Uint64("tried", tried), zap.Uint64("range", r.span.next()), zap.Error(err))
			if r.bf == caller(r.ws) {
				out <- chunk{err: err} // the socket is gone with the oversized frame
				return
			}
			continue
		case rpc.IsRangeError(err) && end > from:
			r.span.refused(tried)
			r.log.Info("eth_getLogs range too large; shrinking", zap.Uint64("block", from), zap.Uint64("range", r.span.next()), zap.Error(err))
			continue
		case isTimeout(err) && !errors.Is(err, rpc.ErrClosed) && end > from && timeouts < maxWeightFailures:
			timeouts++
			r.span.failed(tried)
			r.log.Info("eth_getLogs timed out; shrinking", zap.Uint64("block", from), zap.Uint64("range", r.span.next()), zap.Error(err))
			continue
		case errors.Is(err, errNotCanonical) && inconsistent < 5:
			inconsistent++
			r.log.Info("chain moved during backfill; fetching again", zap.Uint64("block", from), zap.Error(err))
			if !sleep.For(ctx, time.Duration(inconsistent)*100*time.Millisecond) {
				return
			}
			continue
		default:
			out <- chunk{err: fmt.Errorf("backfill blocks %d..%d: %w", from, end, err)}
			return
		}
		timeouts = 0
		r.span.observe(tried, bytes)
		fl.add(bytes)
		select {
		case out <- chunk{blocks: blocks, bytes: bytes}:
		case <-ctx.Done():
			return
		}
		from = end + 1
	}
}
