package process

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/ethhook/ethhook/hook"
)

// headTracker computes a chain's safe head: the highest block of any log
// whose stream entry, and every entry before it, is committed. Held events
// are released only up to it, so a removal published before the blocks
// that confirm an event is always committed first, whichever process (or
// dead consumer) read it.
//
// Each finished read leaves a mark (its last entry id, its highest log
// block). A mark becomes safe once no entry at or below its id is pending
// in the consumer group (XPENDING), across every process of the group:
// reads deliver entries in stream order, so every earlier entry was
// delivered, and an entry leaves the pending list only when its output is
// committed.
//
// The same marks give the chain's durable cursor (see cursor.go): a read's
// highest log block was committed by ingest on top of the cursor its
// parent names, so once the mark is safe every entry up to that cursor is
// handled.
type headTracker struct {
	mu     sync.Mutex
	marks  []readMark // finished reads not yet known to be safe
	head   uint64
	cursor hook.Cursor   // the highest cursor known to be fully handled
	fin    finalityHeads // the node's safe and finalized heads, applied (finality.go)
}

type readMark struct {
	last  streamID
	block uint64
	below hook.Cursor // the cursor ingest committed block on (unset: unknown)
	fin   finalityHeads
}

// maxMarks bounds the marks kept while an earlier entry stays pending (a
// dead consumer's, until it is reclaimed); beyond it neighbours are merged.
const maxMarks = 4096

func newHeadTracker() *headTracker { return &headTracker{} }

// finish records a committed read: its last entry id, highest log block
// and the cursor below that block. It reports whether the read may raise
// the head.
func (h *headTracker) finish(last streamID, maxBlock uint64, below hook.Cursor) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	raisesHead := maxBlock > h.head
	if !raisesHead && !above(below, h.cursor) {
		return false // can raise nothing
	}
	h.mark(readMark{last: last, block: maxBlock, below: below})
	return raisesHead
}

// finishFinality records a committed read's finality entries under its
// last entry id; they count once the read is safe (settle).
func (h *headTracker) finishFinality(last streamID, f finalityHeads) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f.safe <= h.fin.safe && f.final <= h.fin.final {
		return false
	}
	h.mark(readMark{last: last, fin: f})
	return true
}

// mark keeps a finished read's mark until settle finds it safe; h.mu is
// held.
func (h *headTracker) mark(m readMark) {
	h.marks = append(h.marks, m)
	if len(h.marks) > maxMarks {
		h.marks = mergeMarks(h.marks)
	}
}

// mergeMarks halves marks by merging neighbours in id order into the later
// id with the higher block: it becomes safe only when both would have.
func mergeMarks(ms []readMark) []readMark {
	sort.Slice(ms, func(i, j int) bool { return ms[i].last.Less(ms[j].last) })
	out := ms[:0]
	for i := 0; i < len(ms); i += 2 {
		m := ms[i]
		if i+1 < len(ms) {
			n := ms[i+1]
			if above(m.below, n.below) {
				n.below = m.below
			}
			fin := m.fin
			fin.raise(n.fin)
			m = readMark{n.last, max(m.block, n.block), n.below, fin}
		}
		out = append(out, m)
	}
	return out
}

// hasMarks reports whether finished reads wait to raise the head.
func (h *headTracker) hasMarks() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.marks) > 0
}

// settle raises the head over every mark below the group's lowest pending
// entry id (all of them when nothing is pending).
func (h *headTracker) settle(lowestPending streamID, nonePending bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	keep := h.marks[:0]
	for _, m := range h.marks {
		if nonePending || m.last.Less(lowestPending) {
			h.head = max(h.head, m.block)
			h.fin.raise(m.fin)
			if above(m.below, h.cursor) {
				h.cursor = m.below
			}
		} else {
			keep = append(keep, m)
		}
	}
	h.marks = keep
}

// heads returns the applied safe head and the node's safe and finalized
// heads.
func (h *headTracker) heads() (uint64, finalityHeads) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.head, h.fin
}

func (h *headTracker) safeHead() uint64 {
	head, _ := h.heads()
	return head
}

// raise applies heads learnt besides the marks: stored by an earlier run
// or another process, or the ingest cursor.
func (h *headTracker) raise(head uint64, fin finalityHeads) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.head = max(h.head, head)
	h.fin.raise(fin)
}

// settleHead asks the group for its lowest pending entry and raises the
// chain's safe head over the reads below it.
func (m *Module) settleHead(ctx context.Context, chainID uint64, ht *headTracker) error {
	if !ht.hasMarks() {
		return nil
	}
	res, err := m.rdb.Do(ctx, m.rdb.B().Xpending().Key(m.keys.Events(chainID)).Group(Group).Build()).ToArray()
	if err != nil {
		return fmt.Errorf("XPENDING: %w", err)
	}
	if len(res) < 2 {
		return fmt.Errorf("XPENDING: unexpected reply of %d elements", len(res))
	}
	n, err := res[0].AsInt64()
	if err != nil {
		return fmt.Errorf("XPENDING count: %w", err)
	}
	if n == 0 {
		ht.settle(streamID{}, true)
		return nil
	}
	low, err := res[1].ToString()
	if err != nil {
		return fmt.Errorf("XPENDING lowest id: %w", err)
	}
	id, err := parseStreamID(low)
	if err != nil {
		return err
	}
	ht.settle(id, false)
	return nil
}

func (m *Module) tracker(chainID uint64) *headTracker {
	m.releaseMu.Lock()
	defer m.releaseMu.Unlock()
	if m.heads == nil {
		m.heads = map[uint64]*headTracker{}
	}
	t := m.heads[chainID]
	if t == nil {
		t = newHeadTracker()
		m.heads[chainID] = t
	}
	return t
}
