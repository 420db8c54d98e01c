package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/modules/devnet"
)

// TestCrashAtRandomStepsNeitherLosesNorDuplicates kills the ingester
// abruptly (context cancelled at a random commit step, lease kept as a
// crash would) again and again while the chain moves, reorgs included.
func TestCrashAtRandomStepsNeitherLosesNorDuplicates(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 8, LogsPerBlock: 5})
	e.cfg.Ingest.LeaseTTL = 500 * time.Millisecond
	e.node.Mine(20)
	stop := miner(e.node, 15*time.Millisecond)
	rng := rand.New(rand.NewPCG(8, 8))
	for round := 0; round < 6; round++ {
		var cur atomic.Pointer[runner]
		var steps atomic.Int64
		crashAt := int64(1 + rng.IntN(12))
		r := e.start(nil, func(m *Module) {
			m.noRelease = true
			m.testHook = func(_, step string) {
				if steps.Add(1) >= crashAt {
					if r := cur.Load(); r != nil {
						r.cancel() // the in-flight call sees a cancelled context
					}
				}
			}
		})
		cur.Store(r)
		if round%2 == 1 {
			e.node.Reorg(1 + rng.IntN(3))
		}
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			r.stop()
		}
	}
	stop()
	e.start(nil)
	e.waitCaughtUp()
	e.verify()
}

// TestStandbyTakesOverWithoutGapOrDuplicate runs two ingesters on one
// chain: one writes, the other idles; when the writer dies (no release:
// its lease must expire) the standby continues from its cursor.
func TestStandbyTakesOverWithoutGapOrDuplicate(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 9, LogsPerBlock: 4})
	e.node.Mine(10)
	a := e.start(nil, func(m *Module) { m.noRelease = true })
	e.waitCaughtUp()
	b := e.start(nil)
	stop := miner(e.node, 20*time.Millisecond)
	defer stop()
	lease := func(r *runner) float64 {
		return testutil.ToFloat64(r.m.met.leaseHolder.WithLabelValues("devnet", "31337"))
	}
	eventually(t, 10*time.Second, "standby to be ready", b.m.Ready)
	time.Sleep(300 * time.Millisecond)
	if lease(a) != 1 || lease(b) != 0 {
		t.Fatalf("lease gauges: a=%v b=%v, want 1 and 0", lease(a), lease(b))
	}
	if got := testutil.ToFloat64(b.m.met.blocks.WithLabelValues("devnet", "31337")); got != 0 {
		t.Fatalf("standby committed %v blocks", got)
	}
	a.stop() // dies holding the lease
	eventually(t, 10*time.Second, "standby to take over", func() bool { return lease(b) == 1 })
	e.node.Reorg(2)
	time.Sleep(200 * time.Millisecond)
	stop()
	e.waitCaughtUp()
	e.verify()
	if got := testutil.ToFloat64(b.m.met.blocks.WithLabelValues("devnet", "31337")); got == 0 {
		t.Fatal("standby never committed")
	}
}

// TestStaleWriterIsFenced: a commit with an old fencing token is refused.
func TestStaleWriterIsFenced(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 10})
	st := newStore(e.rdb, e.prefix, testChainID, 1000, time.Minute)
	ctx := context.Background()
	t1, err := st.acquire(ctx, "a", time.Second)
	if err != nil || t1 == 0 {
		t.Fatalf("acquire: %d %v", t1, err)
	}
	if t2, _ := st.acquire(ctx, "b", time.Second); t2 != 0 {
		t.Fatal("second holder acquired a held lease")
	}
	st.rdb.Do(ctx, st.rdb.B().Del().Key(st.lease).Build()) // a's lease expires
	t2, _ := st.acquire(ctx, "b", time.Second)
	if t2 <= t1 {
		t.Fatalf("fence did not increase: %d then %d", t1, t2)
	}
	b := &block{header: header{Number: 1, Hash: hash(1), ParentHash: hash(0)}, logs: []ethLog{{LogIndex: 0, BlockHash: hash(1), BlockNumber: 1}}}
	req := commitReq{token: t1, blocks: []*block{b}, trim: func(uint64) (uint64, string, bool) { return 0, "", false }}
	if _, _, err := st.commit(ctx, req); err == nil || !isErr(err, errFenced) {
		t.Fatalf("stale commit: %v, want fenced", err)
	}
	req.token = t2
	if pub, _, err := st.commit(ctx, req); err != nil || pub != 1 {
		t.Fatalf("commit: %d %v", pub, err)
	}
	// The same block again on a stale cursor view: refused, not duplicated.
	if _, _, err := st.commit(ctx, req); !isErr(err, errCursorMoved) {
		t.Fatalf("replayed commit: %v, want cursor moved", err)
	}
	if n, _ := st.rdb.Do(ctx, st.rdb.B().Xlen().Key(st.events).Build()).AsInt64(); n != 1 {
		t.Fatalf("stream has %d entries, want 1", n)
	}
}

func hash(n int) string { return fmt.Sprintf("0x%064x", n) }

// TestMalformedFramesAndWrongChainAreCountedAndSkipped puts a node of
// another chain first in the URL list and corrupts frames of the right one.
func TestMalformedFramesAndWrongChainAreCountedAndSkipped(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 11, LogsPerBlock: 3})
	wrong := newEnv(t, devnet.Config{ChainID: 999, Seed: 12})
	e.chain.WSURLs = []string{wsURL(wrong.srv), wsURL(e.srv)}
	e.node.Mine(5)
	r := e.start(nil)
	e.waitCaughtUp()
	for i := 0; i < 8; i++ {
		e.node.MalformedNext(1)
		e.node.Mine(1)
		time.Sleep(30 * time.Millisecond)
	}
	e.node.RateLimitNext(2)
	e.node.Mine(3)
	e.waitCaughtUp()
	e.verify()
	if got := testutil.ToFloat64(r.m.met.wrongChain.WithLabelValues("devnet", "31337")); got < 1 {
		t.Fatalf("wrong_chain_id_total = %v", got)
	}
	if got := testutil.ToFloat64(r.m.met.malformed.WithLabelValues("devnet", "31337")); got < 1 {
		t.Fatalf("malformed_frames_total = %v", got)
	}
	if e.node.Stats().Malformed == 0 {
		t.Fatal("devnet sent no malformed frame")
	}
}

// TestOversizedMessageIsCountedAndRangeShrinks: a read limit smaller than
// one backfill answer kills that socket; the ingester counts it, shrinks
// the range and carries on. The span normally follows the log density and
// never gets there, so the test starts it at the full max_log_range, as
// after a sudden jump in density.
func TestOversizedMessageIsCountedAndRangeShrinks(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 13, LogsPerBlock: 50, FixedLogs: true})
	e.cfg.Ingest.MaxMessageBytes = 1 << 20
	e.node.Mine(200) // ~200*50 logs of ~700 bytes: far above 1 MiB
	r := e.start(nil, func(m *Module) { m.runners[0].span.size = m.runners[0].span.max })
	e.waitCaughtUp()
	e.verify()
	if got := testutil.ToFloat64(r.m.met.oversized.WithLabelValues("devnet", "31337")); got < 1 {
		t.Fatalf("oversized_messages_total = %v", got)
	}
}

// TestFailingChainDoesNotStopAnother: one chain's URL refuses connections
// and another chain's ingester panics once; the healthy chain keeps going.
func TestFailingChainDoesNotStopAnother(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 14, LogsPerBlock: 2})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "ws://" + ln.Addr().String() + "/"
	ln.Close()
	bad := config.Chain{Name: "dead", ID: 4242, WSURLs: []string{dead}, ReorgDepth: 4}
	var panicked atomic.Bool
	e.node.Mine(5)
	r := e.start([]config.Chain{bad, e.chain}, func(m *Module) {
		m.testHook = func(chain, step string) {
			if chain == "devnet" && step == "commit" && panicked.CompareAndSwap(false, true) {
				panic("injected")
			}
		}
	})
	stop := miner(e.node, 20*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	stop()
	e.waitCaughtUp()
	e.verify()
	if got := testutil.ToFloat64(r.m.met.restarts.WithLabelValues("devnet", "31337", "panic")); got != 1 {
		t.Fatalf("panic restarts = %v", got)
	}
	if r.m.Ready() {
		t.Fatal("module ready although chain dead never connected")
	}
	_ = hook.TypeLog
}

func isErr(err, target error) bool {
	for err != nil {
		if err == target {
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}
