package ingest

import (
	"context"
	"fmt"
	"sync/atomic"

	"go.uber.org/zap"
)

// reorg walks back from target to the common ancestor with the window,
// publishes log.removed for every orphaned log, then ingests the branch.
func (r *chainRunner) reorg(ctx context.Context, target header) error {
	branch := []header{target}
	h := target
	var minWin uint64 = ^uint64(0)
	for n := range r.win {
		minWin = min(minWin, n)
	}
	var anc cursor
	deepChecked := false
	for {
		if h.Number == 0 {
			return fmt.Errorf("reorg at block %d: no common ancestor down to genesis", uint64(target.Number))
		}
		pn := uint64(h.Number) - 1
		if e, ok := r.win[pn]; ok && e.Hash == h.ParentHash {
			anc = cursor{Number: pn, Hash: h.ParentHash, Set: true}
			break
		}
		if len(r.win) == 0 {
			r.log.Error("reorg with an empty window (Redis lost state); logs of older orphaned blocks cannot be retracted",
				zap.Uint64("block", uint64(target.Number)))
			anc = cursor{Number: pn, Hash: h.ParentHash, Set: true}
			break
		}
		if pn < minWin {
			if !r.windowFull(minWin) {
				// The window is still filling (Redis lost state, see
				// durable.go): nothing tells a deep reorg from a foreign
				// node below it but the finalized block (checkAncestor).
				r.log.Error("reorg deeper than the window, which is still refilling after Redis lost state; logs of older orphaned blocks cannot be retracted",
					zap.Uint64("block", uint64(target.Number)), zap.Uint64("window_start", minWin))
				anc = cursor{Number: pn, Hash: h.ParentHash, Set: true}
				break
			}
			return r.foreign(ctx, "deeper_than_bound", fmt.Sprintf("reorg at block %d reaches below the window's block %d", uint64(target.Number), minWin))
		}
		if !deepChecked && pn+r.keep <= r.cur.Number+1 {
			deepChecked = true
			if err := r.checkDeep(ctx, uint64(target.Number)); err != nil {
				return err
			}
		}
		p, err := r.headerByHash(ctx, h.ParentHash)
		if err != nil {
			return fmt.Errorf("reorg walk back from block %d: %w", uint64(h.Number), err)
		}
		if p.Number != h.Number-1 || p.Hash != h.ParentHash {
			return fmt.Errorf("reorg walk back: block %s is number %d, want %d", h.ParentHash, uint64(p.Number), uint64(h.Number)-1)
		}
		branch = append(branch, p)
		h = p
	}
	if r.cur.Number > anc.Number+deepReorg {
		// A node that switched chains looks like a deep reorg: make sure
		// it did not before unwinding anything.
		if err := r.recheckChainID(ctx); err != nil {
			return fmt.Errorf("reorg of %d blocks at block %d: %w", r.cur.Number-anc.Number, uint64(target.Number), err)
		}
	}
	if err := r.checkAncestor(ctx, anc, uint64(target.Number)); err != nil {
		return err
	}
	if r.q != nil {
		// Nothing is unwound for a branch the other providers do not
		// confirm: its first block must reach the quorum (quorum.go).
		want := make([]hashAt, 0, len(branch))
		for i := len(branch) - 1; i >= 0; i-- {
			if uint64(branch[i].Number) > anc.Number {
				want = append(want, hashAt{uint64(branch[i].Number), branch[i].Hash})
			}
		}
		if len(want) > 0 {
			if _, err := r.awaitQuorum(ctx, want[:1]); err != nil {
				return fmt.Errorf("reorg at block %d: %w", uint64(target.Number), err)
			}
		}
	}
	var orphans []orphan
	for n := r.cur.Number; n > anc.Number; n-- {
		if e, ok := r.win[n]; ok {
			orphans = append(orphans, orphan{Number: n, Hash: e.Hash})
		}
	}
	removals, err := r.st.removals(ctx, orphans)
	if err != nil {
		return err
	}
	deep := r.blockRemovals(orphans)
	r.m.step(r.ch.Name, "rewind")
	if err := r.st.rewind(ctx, r.token, r.cur, anc, orphans, removals, deep); err != nil {
		return fmt.Errorf("unwind %d orphaned blocks to %d: %w", len(orphans), anc.Number, err)
	}
	for n := range r.win {
		if n > anc.Number {
			delete(r.win, n)
		}
	}
	old := r.cur
	atomic.StoreUint64(&r.cur.Number, anc.Number)
	r.cur.Hash = anc.Hash
	r.mReorg.Observe(float64(len(orphans)))
	r.mRemoved.Add(float64(len(removals) / 2))
	r.mCommitted.Set(float64(anc.Number))
	r.log.Warn("reorg: orphaned blocks unwound", zap.Uint64("block", uint64(target.Number)), zap.Int("depth", len(orphans)),
		zap.Uint64("ancestor", anc.Number), zap.Uint64("old_head", old.Number), zap.Int("removed_logs", len(removals)/2))
	for i := len(branch) - 1; i >= 0; i-- {
		b := branch[i]
		if uint64(b.Number) <= anc.Number {
			continue
		}
		if err := r.commitHead(ctx, &b); err != nil {
			return err
		}
	}
	return nil
}
