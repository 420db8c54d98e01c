package devnet

import "sync"

// finality is what the node answers for the "safe" and "finalized" block
// tags: the head minus a distance each, or numbers pinned by a test (a
// stalled or jumped finalized head). Real nodes get these from the
// consensus layer; tests need them to lag, stall, jump and go backwards.
type finality struct {
	mu             sync.Mutex
	safeDepth      uint64
	finalizedDepth uint64
	pinned         bool
	safe, final    uint64
}

// FinalityState is the control API's view of the tags.
type FinalityState struct {
	Safe           uint64 `json:"safe"`
	Finalized      uint64 `json:"finalized"`
	SafeDepth      uint64 `json:"safe_depth"`
	FinalizedDepth uint64 `json:"finalized_depth"`
	Pinned         bool   `json:"pinned"`
}

// tags returns the safe and finalized block numbers for head.
func (f *finality) tags(head uint64) (safe, final uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pinned {
		// A pinned tag never points past the head (a reorg may shorten
		// the chain under it).
		return min(f.safe, head), min(f.final, head)
	}
	return sub(head, f.safeDepth), sub(head, f.finalizedDepth)
}

// Finality reports the tags as the node answers them now.
func (n *Node) Finality() FinalityState {
	s, fin := n.fin.tags(n.headBlock().Number)
	n.fin.mu.Lock()
	defer n.fin.mu.Unlock()
	return FinalityState{Safe: s, Finalized: fin, SafeDepth: n.fin.safeDepth, FinalizedDepth: n.fin.finalizedDepth, Pinned: n.fin.pinned}
}

// SetFinalityDepths sets how far the safe and finalized tags lag the head
// (0 leaves one as it is) and unpins them.
func (n *Node) SetFinalityDepths(safe, finalized uint64) {
	n.fin.mu.Lock()
	defer n.fin.mu.Unlock()
	if safe > 0 {
		n.fin.safeDepth = safe
	}
	if finalized > 0 {
		n.fin.finalizedDepth = finalized
	}
	n.fin.pinned = false
}

// StallFinality pins both tags where they are: they stop advancing while
// blocks keep coming, until ResumeFinality or JumpFinality.
func (n *Node) StallFinality() FinalityState {
	head := n.headBlock().Number
	n.fin.mu.Lock()
	if !n.fin.pinned {
		n.fin.safe, n.fin.final = sub(head, n.fin.safeDepth), sub(head, n.fin.finalizedDepth)
		n.fin.pinned = true
	}
	n.fin.mu.Unlock()
	return n.Finality()
}

// JumpFinality pins the finalized tag at block to (clamped to the head; the
// safe tag at least as high): a sudden jump, or a move backwards when to is
// lower than before (what a broken node may do).
func (n *Node) JumpFinality(to uint64) FinalityState {
	head := n.headBlock().Number
	to = min(to, head)
	n.fin.mu.Lock()
	s := sub(head, n.fin.safeDepth)
	if n.fin.pinned {
		s = n.fin.safe
	}
	n.fin.safe, n.fin.final, n.fin.pinned = max(s, to), to, true
	n.fin.mu.Unlock()
	return n.Finality()
}

// ResumeFinality unpins the tags: they lag the head by their distances
// again (which may be lower than a jumped tag: a tag going backwards).
func (n *Node) ResumeFinality() FinalityState {
	n.fin.mu.Lock()
	n.fin.pinned = false
	n.fin.mu.Unlock()
	return n.Finality()
}
