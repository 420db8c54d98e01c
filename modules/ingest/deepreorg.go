package ingest

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
)

// Deep reorgs. The window keeps every committed block's hash and parent for
// the chain's max_reorg_depth (r.deep), but the published entries of only
// the last reorg_depth blocks (r.keep), which is what log.removed entries
// are made from. A reorg between the two is walked back with the node to
// its common ancestor, bounded by the block reported finalized; the
// orphaned blocks whose entries are gone are retracted as whole blocks: a
// block.removed entry each, from which process retracts what Postgres
// knows it produced for that block hash. Anything deeper, or below the
// finalized block, is a foreign or broken node (foreign.go).

// maxReorgDepth is the chain's bound: max_reorg_depth, at least reorg_depth.
func maxReorgDepth(reorgDepth, maxDepth int) int {
	if maxDepth <= 0 {
		maxDepth = 4 * reorgDepth
	}
	return max(maxDepth, reorgDepth)
}

// checkDeep runs before a reorg walks back further than reorg_depth: two
// calls tell a deep reorg from a foreign node before hundreds of headers
// are fetched. The node must hold the finalized block reported and the
// window's oldest block; otherwise the common ancestor is below either.
func (r *chainRunner) checkDeep(ctx context.Context, at uint64) error {
	if f := r.finalized(); f.Set {
		h, err := r.getHeader(ctx, "eth_getBlockByNumber", hexNum(f.Number))
		if err != nil {
			return fmt.Errorf("deep reorg at block %d: check finalized block %d: %w", at, f.Number, err)
		}
		if h.Hash != f.Hash {
			return r.foreign(ctx, "contradicts_finalized", fmt.Sprintf("reorg at block %d replaces finalized block %d %s with %s", at, f.Number, f.Hash, h.Hash))
		}
	}
	low, ok := r.oldestWindow()
	if !ok || !r.windowFull(low.Number) {
		return nil // a window still refilling bounds nothing (see reorg)
	}
	h, err := r.getHeader(ctx, "eth_getBlockByNumber", hexNum(low.Number))
	if err != nil {
		return fmt.Errorf("deep reorg at block %d: check block %d: %w", at, low.Number, err)
	}
	if h.Hash != low.Hash {
		return r.foreign(ctx, "deeper_than_bound", fmt.Sprintf("reorg at block %d reaches below block %d (max_reorg_depth %d): %s there, %s committed",
			at, low.Number, r.deep-1, h.Hash, low.Hash))
	}
	return nil
}

// windowFull reports whether the window (lowest block minWin) holds
// max_reorg_depth blocks below the cursor, or every block down to the
// configured start: only then is a reorg below it deeper than the bound.
func (r *chainRunner) windowFull(minWin uint64) bool {
	if sb := r.ch.StartBlock; sb != nil && minWin <= *sb {
		return true
	}
	return minWin == 0 || r.cur.Number-minWin+2 >= r.deep
}

// checkAncestor refuses a common ancestor below the finalized block (a
// node whose chain forks below it; checkDeep catches most of them first).
func (r *chainRunner) checkAncestor(ctx context.Context, anc cursor, at uint64) error {
	if f := r.finalized(); f.Set && anc.Number < f.Number {
		return r.foreign(ctx, "contradicts_finalized", fmt.Sprintf("reorg at block %d forks at block %d, below finalized block %d", at, anc.Number, f.Number))
	}
	return nil
}

// blockRemovals splits the orphans into those whose entries are kept (the
// last reorg_depth blocks: log.removed entries) and the deeper ones,
// retracted as whole blocks.
func (r *chainRunner) blockRemovals(orphans []orphan) []hook.BlockRemoved {
	var out []hook.BlockRemoved
	for _, o := range orphans {
		if o.Number+r.keep <= r.cur.Number {
			out = append(out, hook.BlockRemoved{Block: cursor{Number: o.Number, Hash: o.Hash, Set: true}})
		}
	}
	if len(out) > 0 {
		r.mDeepReorgs.Inc()
		r.log.Warn("deep reorg: orphaned blocks older than reorg_depth are retracted as whole blocks (process retracts what it delivered from Postgres)",
			zap.Int("blocks", len(out)), zap.Uint64("from", out[len(out)-1].Block.Number), zap.Uint64("to", out[0].Block.Number))
	}
	return out
}
