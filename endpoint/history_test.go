package endpoint

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/hook"
)

// TestFromBlockIsBoundedAndNeedsOneChain: a history further back than
// MaxHistoryBlocks from the chain's committed head, or over two chains, is
// a validation error naming from_block and the limit; a good one is
// recorded as pending and shown by Get.
func TestFromBlockIsBoundedAndNeedsOneChain(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.app(t, "h")
	if err := e.rdb.Do(ctx, e.rdb.B().Set().Key(e.keys.Chain(1, "cursor")).Value("2000000:0xabc").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	in := transferInput
	far := uint64(2_000_000 - MaxHistoryBlocks - 1)
	in.FromBlock = &far
	_, _, err := e.svc.Create(ctx, hook.Operator, app, in)
	var ve hook.FieldErrors
	if !errors.As(err, &ve) || !strings.Contains(ve["from_block"], "MaxHistoryBlocks") {
		t.Fatalf("from_block too far back: %v", err)
	}
	two := in
	two.Filter.Chains = []uint64{1, 8453}
	ok := uint64(1_999_000)
	two.FromBlock = &ok
	if _, _, err := e.svc.Create(ctx, hook.Operator, app, two); !errors.As(err, &ve) || !strings.Contains(ve["from_block"], "one chain") {
		t.Fatalf("from_block with two chains: %v", err)
	}
	in.FromBlock = &ok
	ep, _, err := e.svc.Create(ctx, hook.Operator, app, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.Get(ctx, hook.Operator, app, ep.ID)
	if err != nil || got.History == nil || got.History.FromBlock != ok || got.History.State != hook.HistoryPending {
		t.Fatalf("history of the created endpoint: %+v %v", got.History, err)
	}
}
