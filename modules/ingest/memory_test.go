package ingest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ethhook/ethhook/modules/devnet"
)

// sizeRecorder wraps the devnet's HTTP JSON-RPC handler and records the
// largest response body it sent.
type sizeRecorder struct {
	mu      sync.Mutex
	largest int
	answers int
}

type countingWriter struct {
	http.ResponseWriter
	n int
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n += n
	return n, err
}

func (s *sizeRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: w}
		h.ServeHTTP(cw, r)
		s.mu.Lock()
		s.largest = max(s.largest, cw.n)
		if cw.n > 500000 {
			fmt.Println("DEBUG answer", cw.n)
		}
		s.answers++
		s.mu.Unlock()
	})
}

// TestDenseBackfillNeverRequestsMoreThanTheMessageLimit backfills blocks
// of 1,000 logs (~0.7 MB each) with a 2 MiB message limit and the default
// max_log_range of 1,000 blocks: the ranged eth_getLogs span must follow the
// log density, so no answer ever reaches the limit, over HTTP (measured at
// the server) and over WebSocket (no oversized message, no reconnect).
func TestDenseBackfillNeverRequestsMoreThanTheMessageLimit(t *testing.T) {
	const limit = 2 << 20
	for _, transport := range []string{"http", "ws"} {
		t.Run(transport, func(t *testing.T) {
			e := newEnv(t, devnet.Config{Seed: 30, LogsPerBlock: 1000, FixedLogs: true})
			e.cfg.Ingest.MaxMessageBytes = limit
			e.cfg.Ingest.MaxLogRange = 1000
			e.cfg.Ingest.CallTimeout = 10 * time.Second
			e.node.Mine(60)
			var rec sizeRecorder
			if transport == "http" {
				srv := httptest.NewServer(rec.wrap(e.node.Handler()))
				t.Cleanup(srv.Close)
				e.chain.HTTPURL = srv.URL + "/"
			}
			r := e.start(nil)
			e.waitCaughtUp()
			if logs, _ := e.verify(); logs != 60*1000 {
				t.Fatalf("logs %d, want %d", logs, 60*1000)
			}
			if got := testutil.ToFloat64(r.m.met.oversized.WithLabelValues("devnet", "31337")); got != 0 {
				t.Fatalf("oversized_messages_total = %v, want 0", got)
			}
			if got := testutil.ToFloat64(r.m.met.reconnects.WithLabelValues("devnet", "31337")); got != 0 {
				t.Fatalf("reconnects_total = %v, want 0", got)
			}
			if got := testutil.ToFloat64(r.m.met.rpcErrors.WithLabelValues("devnet", "31337", "too_large")); got != 0 {
				t.Fatalf("too_large rpc errors = %v, want 0", got)
			}
			if transport == "http" {
				rec.mu.Lock()
				largest, answers := rec.largest, rec.answers
				rec.mu.Unlock()
				if answers == 0 {
					t.Fatal("the HTTP backfill transport was not used")
				}
				if largest >= limit {
					t.Fatalf("largest answer %d bytes, limit %d", largest, limit)
				}
				t.Logf("largest of %d HTTP answers: %d bytes (limit %d)", answers, largest, limit)
			}
		})
	}
}

// TestBusySingleIngesterKeepsItsLease backfills a dense chain (heavy
// commits, heavy decoding) with the shortest lease TTL: a lone ingester
// must never lose its lease for being busy, so the fencing token it took
// at start is still the chain's token at the end, and nothing was lost.
func TestBusySingleIngesterKeepsItsLease(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 31, LogsPerBlock: 1000, FixedLogs: true})
	e.cfg.Ingest.LeaseTTL = 500 * time.Millisecond
	e.cfg.Ingest.MaxLogRange = 1000
	e.cfg.Ingest.CallTimeout = 10 * time.Second
	e.node.Mine(150)
	r := e.start(nil)
	first := e.fenceAtAcquire(r)
	e.waitCaughtUp()
	if logs, _ := e.verify(); logs != 150*1000 {
		t.Fatalf("logs %d, want %d", logs, 150*1000)
	}
	if fence := e.fence(); fence != first {
		t.Fatalf("fencing token is %s, want %s: the lease was lost and taken again", fence, first)
	}
	if got := leaseLost(r); got != 0 {
		t.Fatalf("lease_lost_total = %v, want 0", got)
	}
	_ = strconv.Itoa
}

func leaseLost(r *runner) float64 {
	return testutil.ToFloat64(r.m.met.leaseLost.WithLabelValues("devnet", "31337"))
}

func retakenCount(r *runner) float64 {
	return testutil.ToFloat64(r.m.met.leaseRetaken.WithLabelValues("devnet", "31337"))
}

// TestLapsedLeaseIsRetakenWithTheSameFence: the writer's lease key vanishes
// (as when renewals could not reach Redis for a TTL) while nobody else
// takes it: the writer takes it again with its fencing token, without
// going to standby, and the stream stays exactly the canonical chain.
func TestLapsedLeaseIsRetakenWithTheSameFence(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 32, LogsPerBlock: 5})
	e.node.Mine(10)
	r := e.start(nil)
	e.waitCaughtUp()
	first := e.fence()
	st := newStore(e.rdb, e.prefix, testChainID, 1000, time.Minute)
	ctx := context.Background()
	stop := miner(e.node, 20*time.Millisecond)
	for i := 0; i < 3; i++ {
		want := retakenCount(r) + 1
		e.rdb.Do(ctx, e.rdb.B().Del().Key(st.lease).Build())
		eventually(t, 10*time.Second, "the lapsed lease to be taken again", func() bool { return retakenCount(r) >= want })
	}
	stop()
	e.waitCaughtUp()
	e.verify()
	if fence := e.fence(); fence != first {
		t.Fatalf("fencing token %s, want %s (the same)", fence, first)
	}
	if got := leaseLost(r); got != 0 {
		t.Fatalf("lease_lost_total = %v, want 0", got)
	}
}

// TestLeaseTakenWhileLapsedFencesTheOldWriter: while the writer's lease
// has lapsed another holder takes it (new fencing token): the old writer
// must stop writing (standby) rather than re-take it, and once the other
// holder is gone it acquires again and continues with no gap and no
// duplicate.
func TestLeaseTakenWhileLapsedFencesTheOldWriter(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 33, LogsPerBlock: 5})
	e.node.Mine(10)
	r := e.start(nil)
	e.waitCaughtUp()
	st := newStore(e.rdb, e.prefix, testChainID, 1000, time.Minute)
	ctx := context.Background()
	stop := miner(e.node, 20*time.Millisecond)
	defer stop()
	first, _ := strconv.ParseInt(e.fence(), 10, 64)
	e.rdb.Do(ctx, e.rdb.B().Del().Key(st.lease).Build())
	tok, err := st.acquire(ctx, "intruder", time.Minute)
	if err != nil || tok <= first {
		t.Fatalf("intruder acquire: %d %v, want a token above the writer's %d", tok, err, first)
	}
	eventually(t, 10*time.Second, "the old writer to lose its lease", func() bool { return leaseLost(r) == 1 })
	cur := e.cursor()
	time.Sleep(300 * time.Millisecond)
	if got := e.cursor(); got != cur {
		t.Fatalf("the fenced writer moved the cursor from %s to %s", cur, got)
	}
	if retakenCount(r) != 0 {
		t.Fatal("the old writer re-took a lease another holder had")
	}
	e.rdb.Do(ctx, e.rdb.B().Del().Key(st.lease).Build()) // the intruder dies
	stop()
	e.waitCaughtUp()
	e.verify()
	if fence, _ := strconv.ParseInt(e.fence(), 10, 64); fence <= tok {
		t.Fatalf("fencing token %d, want above the intruder's %d (writer, intruder, writer again)", fence, tok)
	}
}
