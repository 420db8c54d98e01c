package process

import (
	"testing"

	"github.com/ethhook/ethhook/hook"
)

func sid(ms, seq uint64) streamID { return streamID{MS: ms, Seq: seq} }

func TestHeadRisesOnlyOverReadsBelowTheLowestPendingEntry(t *testing.T) {
	h := newHeadTracker()
	h.finish(sid(10, 0), 100, hook.Cursor{})
	h.finish(sid(20, 1), 120, hook.Cursor{})
	h.finish(sid(30, 0), 130, hook.Cursor{})

	h.settle(sid(20, 0), false) // an entry of another read (20-0) is pending
	if got := h.safeHead(); got != 100 {
		t.Fatalf("head %d, want 100 (reads at or after 20-0 wait)", got)
	}
	h.settle(sid(30, 0), false) // the pending entry is the last read's own
	if got := h.safeHead(); got != 120 {
		t.Fatalf("head %d, want 120", got)
	}
	h.settle(streamID{}, true)
	if got := h.safeHead(); got != 130 || h.hasMarks() {
		t.Fatalf("head %d marks %v, want 130 and none", got, h.marks)
	}
	h.finish(sid(40, 0), 125, hook.Cursor{}) // lower than the head: nothing to remember
	if h.hasMarks() {
		t.Fatal("a read below the head left a mark")
	}
}

func TestMergedMarksNeverRaiseTheHeadEarly(t *testing.T) {
	h := newHeadTracker()
	for i := uint64(1); i <= maxMarks+1; i++ {
		h.finish(sid(i, 0), 1000+i, hook.Cursor{})
	}
	if len(h.marks) > maxMarks {
		t.Fatalf("%d marks kept, cap %d", len(h.marks), maxMarks)
	}
	// With entry 101-0 pending, only reads ending before it may count.
	h.settle(sid(101, 0), false)
	if got := h.safeHead(); got > 1100 || got < 1090 {
		t.Fatalf("head %d: want at most 1100 (the read ending at 100-0) and close to it", got)
	}
}

func TestParseStreamID(t *testing.T) {
	for in, want := range map[string]streamID{"0-0": {}, "1700000000000-5": {MS: 1700000000000, Seq: 5}} {
		got, err := parseStreamID(in)
		if err != nil || got != want {
			t.Fatalf("parseStreamID(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "12", "a-1", "1-b", "-1"} {
		if _, err := parseStreamID(bad); err == nil {
			t.Fatalf("parseStreamID(%q) accepted", bad)
		}
	}
}
