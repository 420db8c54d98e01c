package ingest

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ethhook/ethhook/modules/devnet"
)

func headJumps(r *runner, outcome string) float64 {
	return testutil.ToFloat64(r.m.met.headJumps.WithLabelValues("devnet", "31337", outcome))
}

// blockAsked is the block number a call asks for (eth_getBlockByNumber's
// first parameter, eth_getLogs' fromBlock), if any.
func blockAsked(method string, params json.RawMessage) (uint64, bool) {
	var ps []json.RawMessage
	if json.Unmarshal(params, &ps) != nil || len(ps) == 0 {
		return 0, false
	}
	var s string
	switch method {
	case "eth_getBlockByNumber":
		_ = json.Unmarshal(ps[0], &s)
	case "eth_getLogs":
		var f struct {
			FromBlock string `json:"fromBlock"`
		}
		_ = json.Unmarshal(ps[0], &f)
		s = f.FromBlock
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	return n, err == nil && strings.HasPrefix(s, "0x")
}

// askedRecorder records the block numbers asked for above a floor.
type askedRecorder struct {
	mu    sync.Mutex
	floor uint64
	above []uint64
}

func (a *askedRecorder) note(method string, params json.RawMessage) {
	if n, ok := blockAsked(method, params); ok {
		a.mu.Lock()
		if n > a.floor {
			a.above = append(a.above, n)
		}
		a.mu.Unlock()
	}
}

func (a *askedRecorder) except(claimed uint64) []uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []uint64
	for _, n := range a.above {
		if n != claimed {
			out = append(out, n)
		}
	}
	return out
}

// TestHeadJumpIsRefusedUnlessConfirmed: a lone node claims a head 1,000
// blocks past its real one (max_head_jump 50) in newHeads and in "latest",
// but its eth_blockNumber tells the truth. The claim is refused and
// counted; no block between the real head and the claim is ever asked for
// (the old code started a backfill towards it); once the node stops lying
// ingest goes on exactly.
func TestHeadJumpIsRefusedUnlessConfirmed(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 50, LogsPerBlock: 2})
	e.cfg.Ingest.MaxHeadJump = 50
	f := newFakeNode(t, e.node)
	e.chain.WSURLs = []string{f.url()}
	e.node.Mine(5)
	r := e.start(nil)
	e.waitCaughtUp()
	real := e.node.Head().Number
	claimed := real + 1000
	lie := func(h json.RawMessage) json.RawMessage {
		return editJSON(h, func(m map[string]any) { m["number"] = hexNum(claimed) })
	}
	rec := &askedRecorder{floor: real}
	f.set(func(f *fakeNode) {
		f.head = lie
		f.answer = func(method string, params, result json.RawMessage) json.RawMessage {
			rec.note(method, params)
			if method == "eth_getBlockByNumber" && strings.Contains(string(params), "latest") {
				return lie(result)
			}
			return nil
		}
	})
	eventually(t, 10*time.Second, "the jump to be refused (or followed)", func() bool {
		return headJumps(r, "refused") >= 2 || len(rec.except(claimed)) > 0
	})
	if got := rec.except(claimed); len(got) > 0 {
		t.Fatalf("asked for blocks %v between the real head %d and the claim %d", got[:min(len(got), 5)], real, claimed)
	}
	if n := cursorNumber(t, e); n > real {
		t.Fatalf("cursor %d past the real head %d", n, real)
	}
	f.set(func(f *fakeNode) { f.head, f.answer = nil, nil })
	e.node.Mine(2)
	e.waitCaughtUp()
	e.verify()
}

// TestLongHeadJumpIsConfirmedAndFollowed: after downtime the chain is 100
// blocks further than the cursor (max_head_jump 20). The node confirms the
// head by a second call and the chain's other URL knows it, so ingest
// catches up: a legitimate catch-up is never refused.
func TestLongHeadJumpIsConfirmedAndFollowed(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 51, LogsPerBlock: 2})
	e.cfg.Ingest.MaxHeadJump = 20
	f1, f2 := newFakeNode(t, e.node), newFakeNode(t, e.node)
	e.chain.WSURLs = []string{f1.url(), f2.url()}
	e.node.Mine(5)
	r := e.start(nil)
	e.waitCaughtUp()
	r.stop()
	e.node.Mine(100)
	r = e.start(nil)
	e.waitCaughtUp()
	e.verify()
	if headJumps(r, "confirmed") < 1 || headJumps(r, "refused") != 0 {
		t.Fatalf("head jumps confirmed %v, refused %v", headJumps(r, "confirmed"), headJumps(r, "refused"))
	}
	if f2.count("eth_getBlockByHash") < 1 {
		t.Fatal("the second provider was not asked")
	}
}

// TestHeadJumpUnknownToSecondProviderIsRefused: the first URL lies
// consistently (newHeads, latest, eth_blockNumber and the block by number
// all agree on a fabricated head 1,000 blocks ahead); the chain's second
// URL does not know that block. The jump is refused, ingest fails over to
// the second URL and goes on exactly; nothing past the real head is asked
// of the liar.
func TestHeadJumpUnknownToSecondProviderIsRefused(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 52, LogsPerBlock: 2})
	e.cfg.Ingest.MaxHeadJump = 50
	liar, honest := newFakeNode(t, e.node), newFakeNode(t, e.node)
	e.chain.WSURLs = []string{liar.url(), honest.url()}
	e.node.Mine(5)
	real := e.node.Head().Number
	claimed := real + 1000
	fake := hash(0xdead)
	fab := func(h json.RawMessage) json.RawMessage {
		return editJSON(h, func(m map[string]any) { m["number"], m["hash"] = hexNum(claimed), fake })
	}
	rec := &askedRecorder{floor: real}
	liar.set(func(f *fakeNode) {
		f.head = fab
		f.answer = func(method string, params, result json.RawMessage) json.RawMessage {
			rec.note(method, params)
			switch {
			case method == "eth_blockNumber":
				return json.RawMessage(strconv.Quote(hexNum(claimed)))
			case method == "eth_getBlockByNumber" && strings.Contains(string(params), "latest"):
				return fab(result)
			case method == "eth_getBlockByNumber" && strings.Contains(string(params), hexNum(claimed)):
				return fab(f.backendCall("eth_getBlockByNumber", json.RawMessage(`["latest",false]`)).Result)
			}
			return nil
		}
	})
	r := e.start(nil)
	eventually(t, 20*time.Second, "the fabricated jump to be refused (or followed)", func() bool {
		return headJumps(r, "refused") >= 1 || len(rec.except(claimed)) > 0
	})
	e.node.Mine(2)
	e.waitCaughtUp()
	e.verify()
	if got := rec.except(claimed); len(got) > 0 {
		t.Fatalf("asked the liar for blocks %v between the real head %d and its claim %d", got[:min(len(got), 5)], real, claimed)
	}
	if honest.count("eth_getBlockByHash") < 1 {
		t.Fatal("the second provider was not asked")
	}
}

// TestChainSwitchMidSessionIsNeverCommitted: mid-connection the node puts
// another chain (id 999) behind the same socket, shorter or longer than
// ours. Its blocks look like a deep reorg; the chain id is asked again
// before acting on it, the node is refused and counted, and nothing is
// unwound or committed from it. Back on the right chain, ingest goes on
// exactly.
func TestChainSwitchMidSessionIsNeverCommitted(t *testing.T) {
	for name, otherBlocks := range map[string]int{"shorter": 20, "longer": 40} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, devnet.Config{Seed: 53, LogsPerBlock: 2})
			other := devnet.New(devnet.Config{ChainID: 999, Seed: 54, LogsPerBlock: 2})
			other.Mine(otherBlocks)
			f := newFakeNode(t, e.node)
			e.chain.WSURLs = []string{f.url()}
			e.node.Mine(30)
			r := e.start(nil)
			e.waitCaughtUp()
			cur, entries := e.cursor(), len(e.stream())
			f.backend.Store(other)
			other.Mine(1)
			eventually(t, 20*time.Second, "the switched node to be refused (or followed)", func() bool {
				return counter(r, "wrongChain") >= 1 || e.cursor() != cur
			})
			if got := e.cursor(); got != cur {
				t.Fatalf("cursor moved from %s to %s on the other chain", cur, got)
			}
			if n := len(e.stream()); n != entries {
				t.Fatalf("stream grew from %d to %d entries on the other chain", entries, n)
			}
			f.backend.Store(e.node)
			e.node.Mine(2)
			e.waitCaughtUp()
			if _, removed := e.verify(); removed != 0 {
				t.Fatalf("%d logs retracted for the other chain's blocks", removed)
			}
		})
	}
}

// TestPeriodicChainIDCheckDropsASwitchedNode: no block arrives, but the
// node starts answering another chain id; the periodic check
// (chain_id_check_interval) notices, counts it and drops the session.
func TestPeriodicChainIDCheckDropsASwitchedNode(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 55, LogsPerBlock: 2})
	e.cfg.Ingest.ChainIDCheckInterval = 100 * time.Millisecond
	f := newFakeNode(t, e.node)
	e.chain.WSURLs = []string{f.url()}
	e.node.Mine(5)
	r := e.start(nil)
	e.waitCaughtUp()
	f.set(func(f *fakeNode) {
		f.answer = func(method string, params, result json.RawMessage) json.RawMessage {
			if method == "eth_chainId" {
				return json.RawMessage(`"0x3e7"`)
			}
			return nil
		}
	})
	eventually(t, 10*time.Second, "the wrong chain id to be noticed", func() bool {
		return counter(r, "wrongChain") >= 1 && counter(r, "reconnects") >= 1
	})
	f.set(func(f *fakeNode) { f.answer = nil })
	e.node.Mine(2)
	e.waitCaughtUp()
	e.verify()
}
