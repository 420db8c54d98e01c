package devnet

// Changing the chain: mining blocks onto the canonical chain, head jumps
// and reorgs, each announced to the subscribers (ws.go).

// mineLocked appends k blocks to the canonical chain. Caller holds mineMu.
func (n *Node) mineLocked(k int) []*block {
	out := make([]*block, 0, k)
	for i := 0; i < k; i++ {
		n.mu.RLock()
		parent := n.canon[len(n.canon)-1]
		branch := n.branch
		n.mu.RUnlock()
		b := n.buildBlock(parent, parent.Number+1, branch)
		n.mu.Lock()
		n.canon = append(n.canon, b)
		n.byHash[b.Hash] = b
		n.fullLogs += len(b.Logs)
		n.compactLocked(b.Number)
		n.mu.Unlock()
		if len(b.Logs) > 0 && n.emptyArmed.CompareAndSwap(true, false) {
			n.emptyMu.Lock()
			n.emptyOnce[b.Hash] = true
			n.emptyMu.Unlock()
		}
		out = append(out, b)
	}
	n.statsMu.Lock()
	n.stats.Blocks += uint64(k)
	n.statsMu.Unlock()
	return out
}

// Mine mines k blocks now and announces each to newHeads and logs subscribers.
func (n *Node) Mine(k int) []Block {
	if k <= 0 {
		return nil
	}
	n.mineMu.Lock()
	defer n.mineMu.Unlock()
	bs := n.mineLocked(k)
	for _, b := range bs {
		n.announce(b, true)
	}
	return publicBlocks(bs)
}

// SkipHeads mines k blocks but announces only the last one to newHeads (a
// head jump). Logs subscribers still get the logs of every block.
func (n *Node) SkipHeads(k int) {
	if k <= 0 {
		return
	}
	n.mineMu.Lock()
	defer n.mineMu.Unlock()
	bs := n.mineLocked(k)
	for i, b := range bs {
		n.announce(b, i == len(bs)-1)
	}
}

// Reorg orphans the last depth blocks and mines a replacement branch of
// depth+1 blocks (different hashes and logs). Logs subscribers get removed
// logs for the orphaned blocks, then the new logs; newHeads subscribers get
// the new branch's heads. It returns the new branch. depth is clamped so
// genesis stays.
func (n *Node) Reorg(depth int) []Block {
	if depth <= 0 {
		return n.Mine(1)
	}
	n.mineMu.Lock()
	defer n.mineMu.Unlock()
	n.mu.Lock()
	head := len(n.canon) - 1
	if depth > head {
		depth = head
	}
	old := append([]*block(nil), n.canon[head-depth+1:]...)
	n.canon = n.canon[:head-depth+1]
	for _, b := range old {
		if !b.compact {
			n.fullLogs -= len(b.Logs)
		}
	}
	n.fullFrom = min(n.fullFrom, uint64(len(n.canon)))
	n.orphaned = append(n.orphaned, old...)
	n.branch++
	n.mu.Unlock()
	n.statsMu.Lock()
	n.stats.Reorgs++
	n.statsMu.Unlock()
	bs := n.mineLocked(depth + 1)
	n.announceRemoved(old)
	for _, b := range bs {
		n.announce(b, true)
	}
	return publicBlocks(bs)
}

func publicBlocks(bs []*block) []Block {
	out := make([]Block, len(bs))
	for i, b := range bs {
		out[i] = b.public()
	}
	return out
}
