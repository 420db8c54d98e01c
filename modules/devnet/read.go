package devnet

// Reading the chain: the head, blocks by number or hash, canonical logs
// and orphans, compacted blocks given back whole.

import (
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Head returns the canonical head.
func (n *Node) Head() Block { return n.headBlock().public() }

func (n *Node) headBlock() *block {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.canon[len(n.canon)-1]
}

// canonAt is the canonical block num as stored (maybe compacted), or nil
// past the head.
func (n *Node) canonAt(num uint64) *block {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if num < uint64(len(n.canon)) {
		return n.canon[num]
	}
	return nil
}

// withHash is any block ever mined with hash h as stored (maybe
// compacted), or nil.
func (n *Node) withHash(h common.Hash) *block {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.byHash[h]
}

// BlockByNumber returns the canonical block num.
func (n *Node) BlockByNumber(num uint64) (Block, bool) { return n.wholeBlock(n.canonAt(num)) }

// BlockByHash returns any block ever mined (canonical or orphaned).
func (n *Node) BlockByHash(h common.Hash) (Block, bool) { return n.wholeBlock(n.withHash(h)) }

// wholeBlock is b whole (rebuilt if compacted) in its exported form;
// false for no block.
func (n *Node) wholeBlock(b *block) (Block, bool) {
	if b == nil {
		return Block{}, false
	}
	return n.full(b).public(), true
}

// CanonicalLogs returns the logs of canonical blocks from..to (inclusive,
// clamped to the head).
func (n *Node) CanonicalLogs(from, to uint64) []types.Log {
	n.mu.RLock()
	var blocks []*block
	for i := from; i <= to && i < uint64(len(n.canon)); i++ {
		blocks = append(blocks, n.canon[i])
	}
	n.mu.RUnlock()
	var out []types.Log
	for _, b := range blocks {
		out = append(out, n.full(b).Logs...)
	}
	return out
}

// Orphaned returns every block ever orphaned by Reorg, in orphaning order.
func (n *Node) Orphaned() []Block {
	n.mu.RLock()
	bs := append([]*block(nil), n.orphaned...)
	n.mu.RUnlock()
	for i, b := range bs {
		bs[i] = n.full(b)
	}
	return publicBlocks(bs)
}
