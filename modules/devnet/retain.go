package devnet

// Bounding memory on long runs: old canonical blocks are compacted to
// stubs (RetainBlocks, RetainLogs) and rebuilt from the seed on demand.

import (
	"fmt"
)

// compactLocked compacts the oldest whole canonical blocks beyond
// RetainBlocks or RetainLogs; head stays whole. Caller holds mu.
func (n *Node) compactLocked(head uint64) {
	r, maxLogs := n.cfg.RetainBlocks, n.cfg.RetainLogs
	if r == 0 && maxLogs <= 0 {
		return
	}
	for n.fullFrom < head {
		if !(r > 0 && head-n.fullFrom >= r) && !(maxLogs > 0 && n.fullLogs > maxLogs) {
			return
		}
		if old := n.canon[n.fullFrom]; !old.compact && old.Number > 0 {
			st := old.stub()
			n.canon[n.fullFrom] = st
			n.byHash[st.Hash] = st
			n.fullLogs -= len(old.Logs)
		}
		n.fullFrom++
	}
}

// stub is what is kept of b once compacted: enough to find it and rebuild
// it (Node.full), which renders everything else again on demand.
func (b *block) stub() *block {
	return &block{Number: b.Number, Hash: b.Hash, ParentHash: b.ParentHash, Time: b.Time, branch: b.branch, compact: true}
}

// cacheBlocks bounds the cache of rebuilt blocks; with RetainLogs set, it
// also holds at most half that many logs (and at least one block).
const cacheBlocks = 64

// full returns b with its logs and transactions, rebuilding a compacted
// block from the seed (cached for the next requests).
func (n *Node) full(b *block) *block {
	if !b.compact {
		return b
	}
	n.cacheMu.Lock()
	c, ok := n.cache[b.Hash]
	n.cacheMu.Unlock()
	if ok {
		return c
	}
	parent := &block{}
	parent.Hash = b.ParentHash
	c = n.buildBlock(parent, b.Number, b.branch)
	if c.Hash != b.Hash {
		panic(fmt.Sprintf("devnet: rebuilt block %d has hash %s, want %s", b.Number, c.Hash, b.Hash))
	}
	n.cacheMu.Lock()
	if _, ok := n.cache[b.Hash]; !ok {
		n.cache[b.Hash] = c
		n.cacheOrder = append(n.cacheOrder, b.Hash)
		n.cacheLogs += len(c.Logs)
		for len(n.cacheOrder) > 1 && (len(n.cacheOrder) > cacheBlocks || (n.cfg.RetainLogs > 0 && n.cacheLogs > n.cfg.RetainLogs/2)) {
			n.cacheLogs -= len(n.cache[n.cacheOrder[0]].Logs)
			delete(n.cache, n.cacheOrder[0])
			n.cacheOrder = n.cacheOrder[1:]
		}
	}
	n.cacheMu.Unlock()
	n.count(func(s *Stats) { s.Rebuilt++ })
	return c
}
