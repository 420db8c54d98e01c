package ingest

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/internal/outage"
)

// Redis losing its state (a restart without persistence, FLUSHALL, a
// failover to a replica that lagged) takes the cursor, the window, the
// dedup keys, the lease and fence, the events stream and the process
// group with it. Going on at the head would skip every block since the
// last one process handled, silently. So each session compares what Redis
// has with the durable cursor in Postgres (package chaincursor), which
// process advances only over blocks whose entries it has handled:
//
//   - Redis has no cursor: resume from the durable one (checked against the
//     node, see resumeFrom) and backfill to the head. The blocks after it
//     are published again, their dedup keys rebuilt; process drops the
//     messages it already has (unique per endpoint, event and type).
//     Without a durable cursor, this process's own last cursor is the best
//     left (entries process had not read are lost with the stream).
//   - Redis's cursor is more than the window behind the durable one
//     (restarted from an old snapshot, a replica that lagged): resume from
//     Redis's cursor, not the durable one. Its window and stored entries
//     are consistent with it (removals on a reorg still work), and the
//     blocks between are published again, duplicates dropped as above.
//     Jumping ahead would mix a cursor with a window from another time.
//   - Otherwise Redis is authoritative (it is normally ahead; a reorg may
//     rewind it a little below the durable cursor).
//
// Each case that means Redis lost state logs one error with the blocks
// fetched again and counts ethhook_ingest_redis_state_lost_total.

var (
	//go:embed restore.lua
	restoreSrc    string
	restoreScript = rueidis.NewLuaScript(guardSrc + restoreSrc)
)

// resume reconciles the session's Redis state (r.cur, r.win, just loaded)
// with the durable cursor; prev is this process's cursor before the load.
func (r *chainRunner) resume(ctx context.Context, prev cursor) error {
	var durable cursor
	if r.m.cursors != nil {
		var err error
		if durable, err = r.m.cursors.Load(ctx, r.ch.ID); err != nil {
			if !r.cur.Set {
				// Without either cursor, starting anywhere could skip
				// blocks: wait for Postgres (the session is retried).
				return storeError{"read the durable cursor (Redis has no cursor for the chain)", outage.Postgres(err)}
			}
			// Postgres is only needed when Redis lost state: an outage of
			// it must not stop ingest.
			r.out.Postgres.Fail("read the durable cursor (going on from Redis's)", outage.Postgres(err))
			return nil
		}
		r.out.Postgres.OK()
	}
	switch {
	case !r.cur.Set && durable.Set:
		return r.restore(ctx, durable, "the durable cursor")
	case !r.cur.Set && prev.Set:
		return r.restore(ctx, prev, "this process's last cursor (no durable cursor yet; entries not yet processed are lost)")
	case r.cur.Set && durable.Set && r.cur.Number+r.keep < durable.Number:
		head, err := r.latest(ctx)
		if err != nil {
			return err
		}
		r.mRedisLost.WithLabelValues("behind").Inc()
		r.log.Error("Redis lost state: its cursor is behind the durable one (restarted from an old snapshot, or a replica that lagged); resuming from Redis's cursor and publishing the blocks again (process drops what it already has)",
			zap.Uint64("redis_cursor", r.cur.Number), zap.Uint64("durable_cursor", durable.Number),
			zap.Uint64("from", r.cur.Number+1), zap.Uint64("to", uint64(head.Number)))
	}
	return nil
}

// restore sets Redis's cursor to c (or the block the node has in its
// place, see resumeFrom), fenced by our lease, so the session backfills
// from there.
func (r *chainRunner) restore(ctx context.Context, c cursor, source string) error {
	from, err := r.resumeFrom(ctx, c)
	if err != nil {
		return fmt.Errorf("resume after Redis lost state: %w", err)
	}
	head, err := r.latest(ctx)
	if err != nil {
		return fmt.Errorf("resume after Redis lost state: %w", err)
	}
	err = restoreScript.Exec(ctx, r.st.rdb, []string{r.st.fence, r.st.cursor, r.st.window}, []string{strconv.FormatInt(r.token, 10), from.String()}).Error()
	if err := scriptErr("restore cursor", err); err != nil {
		return err
	}
	r.cur, r.win = from, map[uint64]winEntry{}
	r.mCommitted.Set(float64(from.Number))
	r.mRedisLost.WithLabelValues("empty").Inc()
	r.log.Error("Redis lost state: no cursor for the chain; resuming from "+source+" and fetching the blocks after it again",
		zap.String("cursor", c.String()), zap.Uint64("from", from.Number+1), zap.Uint64("to", uint64(head.Number)))
	return nil
}

// resumeFrom returns c if the node still has it on its canonical chain;
// otherwise (a reorg while Redis was gone) the canonical block a window
// below it, an ancestor the orphaned branch cannot reach below without a
// reorg deeper than the window.
func (r *chainRunner) resumeFrom(ctx context.Context, c cursor) (cursor, error) {
	h, err := r.getHeader(ctx, "eth_getBlockByNumber", hexNum(c.Number))
	if err != nil {
		return cursor{}, fmt.Errorf("check cursor %s: %w", c, err)
	}
	if strings.EqualFold(h.Hash, c.Hash) {
		return c, nil
	}
	n := c.Number - min(c.Number, r.keep)
	a, err := r.getHeader(ctx, "eth_getBlockByNumber", hexNum(n))
	if err != nil {
		return cursor{}, fmt.Errorf("cursor %s is not canonical; fetch block %d: %w", c, n, err)
	}
	r.log.Warn("the cursor to resume from is no longer canonical; resuming a window below it",
		zap.String("cursor", c.String()), zap.String("canonical", h.Hash), zap.Uint64("block", n))
	return cursor{Number: n, Hash: a.Hash, Set: true}, nil
}
