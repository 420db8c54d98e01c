package process

import (
	"context"
	"testing"

	"github.com/ethhook/ethhook/chaincursor"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
)

// TestEndpointLoadedLateGetsEveryBlockAfterTheHandover: a process that
// never hears of a new endpoint (no NOTIFY, no periodic reload: the
// slowest possible load) still matches it for every events entry added
// after the history handover, exactly once, so no block falls between the
// history (up to the cursor the handover read) and the live path.
func TestEndpointLoadedLateGetsEveryBlockAfterTheHandover(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.start(func(m *Module) { m.ignoreChanges = true })
	var before []hook.Event
	for b := uint64(1); b <= 5; b++ {
		before = append(before, transfer("cc", b, 0, token, alice, bob, int64(b)))
	}
	e.publish(before...)
	// drained, not only none pending: entries not yet read are not pending.
	e.eventually("the first blocks handled", e.drained)
	if err := e.rdb.Do(ctx, e.rdb.B().Set().Key(e.keys.Chain(testChain, "cursor")).Value(hook.Cursor{Number: 5, Hash: blockHash("cc", 5), Set: true}.String()).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	from := uint64(1)
	ep := e.endpoint(endpoint.Input{Filter: hook.Filter{Chains: []uint64{testChain}, Addresses: []string{token}}, FromBlock: &from})
	// What ingest's historian does before it fixes to_block.
	cur, err := chaincursor.Handover(ctx, e.rdb, e.keys, testChain)
	if err != nil || cur == "" {
		t.Fatalf("handover: %q %v", cur, err)
	}
	var after []hook.Event
	for b := uint64(6); b <= 15; b++ {
		after = append(after, transfer("cc", b, 0, token, alice, bob, int64(b)), transfer("cc", b, 1, token, alice, bob, int64(b)))
	}
	e.publish(after...)
	e.eventually("the later blocks handled", func() bool { return e.pending() == 0 && e.count(ep.ID) >= len(after) })
	got := map[string]int{}
	for _, m := range e.messages(ep.ID) {
		got[m.EventID]++
	}
	for _, ev := range after {
		if got[ev.ID] != 1 {
			t.Fatalf("event %s of block %d after the handover: %d messages, want 1 (all: %v)", ev.ID, ev.Block.Number, got[ev.ID], got)
		}
	}
	if len(got) != len(after) {
		t.Fatalf("messages of %d events, want the %d after the handover (history's range is history's): %v", len(got), len(after), got)
	}
}
