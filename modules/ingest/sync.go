package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/backpressure"
	"github.com/ethhook/ethhook/internal/sleep"
)

func (r *chainRunner) noteHead(n uint64) {
	if n > r.head {
		r.head = n
		r.mHead.Set(float64(n))
		// The chain's head for operators (API and UI show head and lag):
		// `<prefix>{<chain>}:head` = decimal block number. Best effort, it
		// expires when no ingester watches the chain any more.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		rdb := r.m.rdb
		cmds := rueidis.Commands{rdb.B().Set().Key(hook.Keys{Prefix: r.m.cfg.Redis.Prefix}.Chain(r.ch.ID, "head")).Value(strconv.FormatUint(n, 10)).Ex(10 * time.Minute).Build()}
		if r.q != nil {
			cmds = append(cmds, r.providersCmd()) // kept alive with the head
		}
		rdb.DoMulti(ctx, cmds...)
		cancel()
	}
	if r.cur.Set && r.head >= r.cur.Number {
		r.mLag.Set(float64(r.head - r.cur.Number))
	}
}

// syncTo brings the stream up to target: backfill a gap, commit the next
// block, or unwind a reorg.
func (r *chainRunner) syncTo(ctx context.Context, target header) error {
	if err := r.checkHead(ctx, target); err != nil {
		return err
	}
	r.noteHead(uint64(target.Number))
	tn := uint64(target.Number)
	if !r.cur.Set {
		start := tn
		if sb := r.ch.StartBlock; sb != nil {
			if *sb > tn {
				return nil // not there yet
			}
			start = *sb
		}
		if start == tn {
			return r.commitHead(ctx, &target)
		}
		if err := r.backfill(ctx, start, tn-1, tn); err != nil {
			return err
		}
	}
	for step := 0; step < 16; step++ {
		if e, ok := r.win[tn]; ok && e.Hash == target.Hash {
			return nil // already have it
		}
		switch {
		case tn > r.cur.Number+1:
			if err := r.backfill(ctx, r.cur.Number+1, tn-1, tn); err != nil {
				return err
			}
			continue
		case tn == r.cur.Number+1 && target.ParentHash == r.cur.Hash:
			return r.commitHead(ctx, &target)
		}
		// A head that does not extend the cursor is a reorg only if the
		// node still says it is canonical: a head that went stale while we
		// backfilled (or a late notification) must not lead us onto an
		// orphaned branch. Follow the node's current head instead.
		canon, err := r.getHeader(ctx, "eth_getBlockByNumber", hexNum(tn))
		if err != nil {
			return err
		}
		if canon.Hash != target.Hash {
			latest, err := r.latest(ctx)
			if err != nil {
				return err
			}
			if latest.Hash == target.Hash {
				return nil
			}
			if err := r.checkHead(ctx, latest); err != nil {
				return err
			}
			target, tn = latest, uint64(latest.Number)
			r.noteHead(tn)
			continue
		}
		return r.reorg(ctx, target)
	}
	return nil // the chain keeps moving; the next head continues
}

// commitHead fetches a head's logs and commits it on top of the cursor.
func (r *chainRunner) commitHead(ctx context.Context, h *header) error {
	logs, err := r.logsByHash(ctx, h)
	if err != nil {
		return err
	}
	return r.commit(ctx, []*block{{header: *h, logs: logs}}, 0)
}

// commit commits blocks; with the chain's quorum set, each only once
// enough providers agree on it (quorum.go), the agreed part first.
func (r *chainRunner) commit(ctx context.Context, blocks []*block, storeFrom uint64) error {
	for r.q != nil && len(blocks) > 0 {
		k, err := r.awaitQuorum(ctx, hashesOf(blocks))
		if err != nil {
			return err
		}
		if k == len(blocks) {
			break
		}
		if err := r.commitBlocks(ctx, blocks[:k], storeFrom); err != nil {
			return err
		}
		blocks = blocks[k:]
	}
	return r.commitBlocks(ctx, blocks, storeFrom)
}

// commitBlocks runs the commit script for blocks and updates the local view.
func (r *chainRunner) commitBlocks(ctx context.Context, blocks []*block, storeFrom uint64) error {
	inBatch := make(map[uint64]string, len(blocks))
	for _, b := range blocks {
		inBatch[uint64(b.Number)] = b.Hash
	}
	trim := func(n uint64) (uint64, string, bool) {
		if n < r.keep {
			return 0, "", false
		}
		t := n - r.keep
		if h, ok := inBatch[t]; ok {
			return t, h, true
		}
		if e, ok := r.win[t]; ok {
			return t, e.Hash, true
		}
		return 0, "", false
	}
	trimWindow := func(n uint64) (uint64, bool) {
		if n < r.deep {
			return 0, false
		}
		return n - r.deep, true
	}
	if !r.process.Wait(ctx) {
		return ctx.Err()
	}
	r.m.step(r.ch.Name, "commit")
	pub, skipped, err := r.commitRetrying(ctx, commitReq{
		token: r.token, expect: r.cur, blocks: blocks, storeFrom: storeFrom, trim: trim, trimWindow: trimWindow, chainName: r.ch.Name,
	})
	if err != nil {
		return fmt.Errorf("commit blocks %d..%d: %w", uint64(blocks[0].Number), uint64(blocks[len(blocks)-1].Number), err)
	}
	for _, b := range blocks {
		n := uint64(b.Number)
		if t, ok := trimWindow(n); ok {
			delete(r.win, t)
		}
		r.win[n] = winEntry{Hash: b.Hash, Parent: b.ParentHash}
	}
	r.commits++
	r.process.Added(pub) // unacknowledged now
	last := blocks[len(blocks)-1]
	atomic.StoreUint64(&r.cur.Number, uint64(last.Number))
	r.cur.Hash, r.cur.Set = last.Hash, true
	r.mLogs.Add(float64(pub))
	r.mBlocks.Add(float64(len(blocks)))
	r.mCommitted.Set(float64(r.cur.Number))
	r.noteHead(r.cur.Number)
	r.m.step(r.ch.Name, "committed")
	if skipped > 0 {
		r.log.Info("blocks already published (dedup key present); cursor advanced", zap.Int64("skipped", skipped), zap.Uint64("block", r.cur.Number))
	}
	return nil
}

// commitRetrying runs the commit script, and runs it again while Redis
// refuses it (down, full with noeviction: OOM, failing over) instead of
// ending the node's session: the node is not at fault, and a new session
// would reconnect, subscribe and fetch the same blocks again, backing off
// up to ingest.reconnect_max (a minute), so ingest would sit idle for up to
// that long after a long Redis outage ended. Commits are fenced, so trying
// again is safe; an answer that our view is stale (fenced, the cursor
// moved) ends the session as before, and so does losing the lease (it
// cancels ctx). Refusals are reported to the chain's Redis outage
// tracker: one line when Redis starts refusing, one when it takes commits
// again.
func (r *chainRunner) commitRetrying(ctx context.Context, req commitReq) (published, skipped int64, err error) {
	for tries := 0; ; tries++ {
		published, skipped, err = r.st.commit(ctx, req)
		if err == nil {
			r.out.Redis.OK()
			return published, skipped, nil
		}
		if errors.Is(err, errFenced) || errors.Is(err, errCursorMoved) || ctx.Err() != nil {
			return published, skipped, err
		}
		r.out.Redis.Fail("commit blocks (the node's session goes on)", err)
		if !sleep.For(ctx, callPause.After(tries)) {
			return 0, 0, ctx.Err()
		}
	}
}

// newProcessGate holds commits back while process has
// ingest.stream_max_len or more entries of this chain unread or
// unacknowledged. The stream is never trimmed below them (trim.lua), so
// committing on would only grow Redis while process is down or behind; the
// blocks stay on the chain and are fetched from the cursor once it catches up.
func (r *chainRunner) newProcessGate() *backpressure.Gate {
	return &backpressure.Gate{
		Limit: r.ing.StreamMaxLen,
		Read: func(ctx context.Context) (int64, bool) {
			n, ok, err := r.st.backlog(ctx)
			return n, ok && err == nil
		},
		Changed: func(held bool, n int64) {
			if held {
				r.mHeldBack.Set(1)
				r.log.Warn("process is behind: new blocks wait until it acknowledges more entries",
					zap.Int64("unacknowledged", n), zap.Int64("limit", r.ing.StreamMaxLen))
				return
			}
			r.mHeldBack.Set(0)
			r.log.Info("process caught up; committing again", zap.Int64("unacknowledged", n))
		},
	}
}
