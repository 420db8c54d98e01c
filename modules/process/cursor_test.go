package process

import (
	"context"
	"testing"

	"github.com/ethhook/ethhook/chaincursor"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
)

func at(n uint64, h string) hook.Cursor { return hook.Cursor{Number: n, Hash: h, Set: true} }

func TestHandledCursorNeverPassesAPendingEntry(t *testing.T) {
	h := newHeadTracker()
	h.finish(sid(10, 0), 5, at(4, "0x4"))
	h.finish(sid(20, 0), 8, at(7, "0x7"))
	h.settle(sid(15, 0), false) // an entry between the two reads is pending
	if got := h.handledCursor(); got != at(4, "0x4") {
		t.Fatalf("cursor %s with 15-0 pending, want 4:0x4", got)
	}
	h.settle(streamID{}, true)
	if got := h.handledCursor(); got != at(7, "0x7") {
		t.Fatalf("cursor %s with nothing pending, want 7:0x7", got)
	}
	// A read whose head is below the safe head still carries the cursor.
	h.finish(sid(30, 0), 8, at(7, "0x7"))
	h.raiseCursor(at(6, "0x6")) // lower: ignored
	if got := h.handledCursor(); got != at(7, "0x7") {
		t.Fatalf("cursor moved back to %s", got)
	}
}

func TestMergedMarksKeepTheHighestCursor(t *testing.T) {
	ms := mergeMarks([]readMark{{last: sid(1, 0), block: 10, below: at(9, "0x9")}, {last: sid(2, 0), block: 8, below: at(7, "0x7")}})
	if len(ms) != 1 || ms[0].last != sid(2, 0) || ms[0].block != 10 || ms[0].below != at(9, "0x9") {
		t.Fatalf("merged = %+v", ms)
	}
}

// The durable cursor follows what process has handled: the parent of the
// highest block read (all earlier entries acknowledged), then, once the
// group is caught up, ingest's own cursor (blocks without logs).
func TestDurableCursorFollowsHandledEntries(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	token := "0x00000000000000000000000000000000000000aa"
	ep := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}})
	e.start()
	var evs []hook.Event
	for n := uint64(1); n <= 5; n++ {
		ev := transfer("aa", n, 0, token, "0x01", "0x02", 1)
		ev.Block.ParentHash = blockHash("aa", n-1)
		evs = append(evs, ev)
	}
	e.publish(evs...)
	store := chaincursor.New(e.pool)
	e.eventually("durable cursor below the last block read", func() bool {
		c, err := store.Load(ctx, testChain)
		return err == nil && c == at(4, blockHash("aa", 4))
	})
	if n := e.count(ep.ID); n != 5 {
		t.Fatalf("%d messages, want 5", n)
	}
	// Ingest committed two empty blocks after: its cursor is fully handled.
	if err := e.rdb.Do(ctx, e.rdb.B().Set().Key(e.keys.Chain(testChain, "cursor")).Value("7:"+blockHash("aa", 7)).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	e.eventually("durable cursor at ingest's cursor once the group is caught up", func() bool {
		c, err := store.Load(ctx, testChain)
		return err == nil && c == at(7, blockHash("aa", 7))
	})
}
