package ingest

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ethhook/ethhook/modules/devnet"
)

func counter(r *runner, name string) float64 {
	mt := r.m.met
	c := map[string]func() float64{
		"invalid":    func() float64 { return testutil.ToFloat64(mt.invalid.WithLabelValues("devnet", "31337")) },
		"dropped":    func() float64 { return testutil.ToFloat64(mt.droppedHeads.WithLabelValues("devnet", "31337")) },
		"wrongChain": func() float64 { return testutil.ToFloat64(mt.wrongChain.WithLabelValues("devnet", "31337")) },
		"reconnects": func() float64 { return testutil.ToFloat64(mt.reconnects.WithLabelValues("devnet", "31337")) },
		"reorgs":     func() float64 { return float64(testutil.CollectAndCount(mt.reorgs)) },
	}[name]
	return c()
}

// poisonLogs rewrites, in every eth_getLogs answer, the logs of block
// number n with edit.
func poisonLogs(n uint64, edit func(l map[string]any)) func(method string, params, result json.RawMessage) json.RawMessage {
	want := hexNum(n)
	return func(method string, params, result json.RawMessage) json.RawMessage {
		if method != "eth_getLogs" {
			return nil
		}
		var logs []map[string]any
		if json.Unmarshal(result, &logs) != nil {
			return nil
		}
		for _, l := range logs {
			if l["blockNumber"] == want {
				edit(l)
			}
		}
		b, _ := json.Marshal(logs)
		return b
	}
}

// TestMalformedLogIsNeverCommitted: a node answers eth_getLogs with one
// log that breaks the spec (each case one field). The whole answer is
// refused and counted; nothing of that block, nor anything after it, is
// published while the node keeps answering so; once it answers well the
// chain is ingested exactly.
func TestMalformedLogIsNeverCommitted(t *testing.T) {
	const marker = "c0ffee"
	cases := map[string]func(l map[string]any){
		"address not hex":  func(l map[string]any) { l["address"] = "0x" + marker + "zz" + strings.Repeat("0", 32) },
		"address 19 bytes": func(l map[string]any) { l["address"] = "0x" + marker + strings.Repeat("0", 32) },
		"topic short":      func(l map[string]any) { l["topics"] = []any{"0x" + marker} },
		"five topics": func(l map[string]any) {
			l["topics"] = []any{hash(1), hash(2), hash(3), hash(4), "0x" + strings.Repeat("0", 58) + marker}
		},
		"data odd length":    func(l map[string]any) { l["data"] = "0x" + marker + "1" },
		"data not hex":       func(l map[string]any) { l["data"] = "0x" + marker + "<b>" },
		"tx hash not hex":    func(l map[string]any) { l["transactionHash"] = "0x" + marker + strings.Repeat("x", 58) },
		"log index 2^63":     func(l map[string]any) { l["logIndex"] = "0x8000000000000000" },
		"tx index above i32": func(l map[string]any) { l["transactionIndex"] = "0x" + marker + "0000" },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, devnet.Config{Seed: 40, LogsPerBlock: 3, FixedLogs: true})
			f := newFakeNode(t, e.node)
			e.chain.WSURLs = []string{f.url()}
			e.node.Mine(5)
			r := e.start(nil)
			e.waitCaughtUp()
			f.set(func(f *fakeNode) { f.answer = poisonLogs(8, edit) })
			e.node.Mine(5) // blocks 6..10; 8 is poisoned
			eventually(t, 20*time.Second, "the poisoned answer to be refused twice (or block 8 committed)", func() bool {
				return counter(r, "invalid") >= 2 || cursorNumber(t, e) >= 8
			})
			if n := cursorNumber(t, e); n >= 8 {
				t.Fatalf("cursor at block %d while block 8 is refused", n)
			}
			f.set(func(f *fakeNode) { f.answer = nil })
			e.waitCaughtUp()
			if logs, _ := e.verify(); logs != 10*3 {
				t.Fatalf("%d logs, want 30", logs)
			}
			for _, x := range e.stream() {
				if strings.Contains(x.Event, marker) {
					t.Fatalf("a poisoned field was published: %s", x.Event)
				}
			}
		})
	}
}

// TestOutOfRangeHeadIsRefusedAtParse: newHeads and "latest" claim block
// 2^64-1 (a block number Postgres would store negative, and the start of
// a backfill to 2^64). Both are refused and counted; nothing past the real
// head is fetched or published.
func TestOutOfRangeHeadIsRefusedAtParse(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 41, LogsPerBlock: 2})
	f := newFakeNode(t, e.node)
	e.chain.WSURLs = []string{f.url()}
	e.node.Mine(5)
	r := e.start(nil)
	e.waitCaughtUp()
	huge := func(h json.RawMessage) json.RawMessage {
		return editJSON(h, func(m map[string]any) { m["number"] = "0xffffffffffffffff" })
	}
	f.set(func(f *fakeNode) {
		f.head = huge
		f.answer = func(method string, params, result json.RawMessage) json.RawMessage {
			if method == "eth_getBlockByNumber" && strings.Contains(string(params), "latest") {
				return huge(result)
			}
			return nil
		}
	})
	e.node.Mine(1)
	real := e.node.Head().Number
	eventually(t, 10*time.Second, "the huge head to be refused (or followed)", func() bool {
		return counter(r, "invalid") >= 2 || cursorNumber(t, e) > real
	})
	if n := cursorNumber(t, e); n > real {
		t.Fatalf("cursor at block %d, past the real head %d", n, real)
	}
	f.set(func(f *fakeNode) { f.head, f.answer = nil, nil })
	e.node.Mine(2)
	e.waitCaughtUp()
	e.verify()
	if n := len(e.stream()); n > 8*4 {
		t.Fatalf("%d entries for 8 blocks", n)
	}
}

// TestNotificationFloodWhileACallWaitsIsBounded: before answering each
// eth_getLogs the node sends 300 newHeads notifications of 1 MiB each (a
// valid header padded). The queue stays within
// ingest.notification_queue_bytes, the surplus is dropped and counted,
// and the chain is still ingested without a gap: dropped heads are only
// hints.
func TestNotificationFloodWhileACallWaitsIsBounded(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 42, LogsPerBlock: 2})
	e.cfg.Ingest.MaxMessageBytes = 2 << 20
	e.cfg.Ingest.NotificationQueueBytes = 4 << 20
	e.cfg.Ingest.CallTimeout = 30 * time.Second // the call waits for the whole flood
	f := newFakeNode(t, e.node)
	e.chain.WSURLs = []string{f.url()}
	e.node.Mine(3)
	r := e.start(nil)
	e.waitCaughtUp()
	pad := strings.Repeat("a", 1<<20)
	var floods int
	f.set(func(f *fakeNode) {
		f.before = func(method string, send func([]byte)) {
			if method != "eth_getLogs" || floods >= 2 {
				return
			}
			floods++
			h := f.backendCall("eth_getBlockByNumber", json.RawMessage(`["latest",false]`)).Result
			frame := headFrame(editJSON(h, func(m map[string]any) { m["pad"] = pad }))
			for i := 0; i < 300; i++ {
				send(frame)
			}
		}
	})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e.node.Mine(1)
	eventually(t, 60*time.Second, "notifications to be dropped", func() bool { return counter(r, "dropped") > 0 })
	runtime.GC()
	runtime.ReadMemStats(&after)
	e.node.Mine(3)
	e.waitCaughtUp()
	e.verify()
	// Secondary and generous: the 300 MiB flood is not held (without the
	// byte bound 256 of them stayed queued).
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("dropped %v notifications; heap in use %d -> %d MiB", counter(r, "dropped"), before.HeapInuse>>20, after.HeapInuse>>20)
	if grew > 100<<20 {
		t.Fatalf("heap grew by %d MiB under the flood", grew>>20)
	}
}

func cursorNumber(t testing.TB, e *env) uint64 {
	t.Helper()
	var n uint64
	if _, err := fmt.Sscanf(e.cursor(), "%d:", &n); err != nil {
		t.Fatalf("cursor %q: %v", e.cursor(), err)
	}
	return n
}
