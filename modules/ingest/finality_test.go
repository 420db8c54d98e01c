package ingest

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/modules/devnet"
)

func (e *env) finality() string {
	s, _ := e.rdb.Do(context.Background(), e.rdb.B().Get().Key(hook.Keys{Prefix: e.prefix}.Chain(testChainID, "finality")).Build()).ToString()
	return s
}

// TestHostileFinalityAnswersAreNeverPublished: a node that answers its
// finalized tag with a block number past any bound, with a finalized block
// above its safe one, or with a hash ingest never committed: nothing of it
// reaches the stream, each is counted, ingest keeps ingesting, and once the
// node answers honestly its blocks are published.
func TestHostileFinalityAnswersAreNeverPublished(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 81, LogsPerBlock: 1, SafeDepth: 2, FinalizedDepth: 4})
	e.cfg.Ingest.FinalityPollInterval = 20 * time.Millisecond
	f := newFakeNode(t, e.node)
	e.chain.WSURLs = []string{f.url()}
	e.node.Mine(20)
	tagged := func(params json.RawMessage, tag string) bool { return strings.Contains(string(params), `"`+tag+`"`) }
	lies := []struct {
		name   string
		edit   func(params, result json.RawMessage) json.RawMessage
		metric func(r *runner) float64
	}{
		{"number past the bound", func(params, result json.RawMessage) json.RawMessage {
			if !tagged(params, "finalized") {
				return nil
			}
			return editJSON(result, func(m map[string]any) { m["number"] = "0x4000000000000000" })
		}, func(r *runner) float64 { return testutil.ToFloat64(r.m.met.invalid.WithLabelValues("devnet", "31337")) }},
		{"finalized above safe", func(params, result json.RawMessage) json.RawMessage {
			if !tagged(params, "safe") {
				return nil
			}
			return editJSON(result, func(m map[string]any) { m["number"] = "0x1" })
		}, func(r *runner) float64 {
			return testutil.ToFloat64(r.m.met.finalityRefused.WithLabelValues("devnet", "31337", "order"))
		}},
		{"a hash never committed", func(params, result json.RawMessage) json.RawMessage {
			if !tagged(params, "finalized") && !tagged(params, "safe") {
				return nil
			}
			return editJSON(result, func(m map[string]any) { m["hash"] = "0x" + strings.Repeat("ee", 32) })
		}, func(r *runner) float64 {
			return testutil.ToFloat64(r.m.met.finalityRefused.WithLabelValues("devnet", "31337", "not_committed"))
		}},
	}
	var lie atomic.Int32
	f.set(func(f *fakeNode) {
		f.answer = func(method string, params, result json.RawMessage) json.RawMessage {
			i := int(lie.Load())
			if method != "eth_getBlockByNumber" || i >= len(lies) {
				return nil
			}
			return lies[i].edit(params, result)
		}
	})
	r := e.start(nil)
	for i := range lies {
		lie.Store(int32(i))
		before := lies[i].metric(r)
		e.node.Mine(1)
		e.waitCaughtUp()
		eventually(t, 10*time.Second, lies[i].name+" refused", func() bool { return lies[i].metric(r) > before })
		if got := e.finality(); got != "" {
			t.Fatalf("%s: finality published: %s", lies[i].name, got)
		}
	}
	lie.Store(int32(len(lies)))
	e.node.Mine(1)
	e.waitCaughtUp()
	head := e.node.Head()
	fin, _ := e.node.BlockByNumber(head.Number - 4)
	want := "|" + hook.Cursor{Number: fin.Number, Hash: strings.ToLower(fin.Hash.Hex()), Set: true}.String()
	eventually(t, 10*time.Second, "the honest finalized block published", func() bool { return strings.HasSuffix(e.finality(), want) })
	e.verify()
}

// TestForeignNodeIsGivenUpForTheChainsOtherURL: the chain's first URL
// starts serving another devnet with the same chain id (another history)
// mid-session. Ingest refuses it (counted), unwinds and retracts nothing,
// and goes on over the chain's second URL exactly.
func TestForeignNodeIsGivenUpForTheChainsOtherURL(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 82, LogsPerBlock: 2, SafeDepth: 2, FinalizedDepth: 4})
	e.cfg.Ingest.FinalityPollInterval = 20 * time.Millisecond
	first, second := newFakeNode(t, e.node), newFakeNode(t, e.node)
	e.chain.WSURLs = []string{first.url(), second.url()}
	e.node.Mine(30)
	r := e.start(nil)
	e.waitCaughtUp()
	eventually(t, 10*time.Second, "finalized block published", func() bool { return e.finality() != "" })
	other := devnet.New(devnet.Config{ChainID: testChainID, Seed: 999, LogsPerBlock: 2, SafeDepth: 2, FinalizedDepth: 4})
	other.Mine(40)
	first.backend.Store(other)
	e.node.Mine(5)
	e.waitCaughtUp()
	foreign := func() float64 {
		n := 0.0
		for _, reason := range []string{"deeper_than_bound", "contradicts_finalized", "finalized_changed"} {
			n += testutil.ToFloat64(r.m.met.foreign.WithLabelValues("devnet", "31337", reason))
		}
		return n
	}
	eventually(t, 10*time.Second, "the foreign node refused", func() bool { return foreign() >= 1 })
	e.node.Mine(5)
	e.waitCaughtUp()
	if _, removed := e.verify(); removed != 0 {
		t.Fatalf("%d removals published: the foreign node's branch was applied", removed)
	}
}
