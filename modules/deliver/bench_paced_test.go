package deliver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/msgstate"
	"github.com/ethhook/ethhook/sign"
)

// Paced benchmarks (issue 12): a producer commits messages at a steady rate
// for a while (INSERT then XADD, as process does), a receiver answering in
// about 1 ms measures the time from each commit to the request's arrival.
// They report p50/p99 committed -> received, webhooks received per second
// over the window, and the backlog (messages not finished) 5 s after the
// producer stops. Production defaults for sweep interval, concurrency and
// queue depth. The producer inserts as process does (its statement, a pool
// of its own, a tx and block hash per row). The window is ETHHOOK_BENCH_SECONDS (default 60); -benchtime
// 1x: one run is one window. ETHHOOK_BENCH_RATE replaces the rate (events/s
// in all), ETHHOOK_BENCH_ENDPOINTS the number of endpoints,
// ETHHOOK_BENCH_LANE_LINGER how long idle lanes linger (e.g. 1ns, 3s).
//
//	go test -run '^$' -bench 'Paced' -benchtime 1x -timeout 30m ./modules/deliver/

type pacedResult struct {
	lat      []time.Duration
	received int
	window   time.Duration
	backlog  int
}

func benchSeconds() time.Duration {
	if n, err := strconv.Atoi(os.Getenv("ETHHOOK_BENCH_SECONDS")); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 60 * time.Second
}

// manyEndpoints inserts n endpoints pointing at url in one batch.
func (e *env) manyEndpoints(b testing.TB, app, url string, n int, fifo bool) []string {
	b.Helper()
	ordering := "parallel"
	if fifo {
		ordering = "fifo"
	}
	ids := make([]string, n)
	secs := make([][]byte, n)
	for i := range ids {
		ids[i] = "ep_" + ulid.Make().String()
		s, _ := sign.NewSecret()
		var err error
		if secs[i], err = e.box.Seal(ids[i], []byte(s)); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO endpoints (id, app_id, url, secret_enc, ordering)
		SELECT id, $2, $3, s, $5 FROM unnest($1::text[], $4::bytea[]) AS t(id, s)`, ids, app, url, secs, ordering); err != nil {
		b.Fatal(err)
	}
	return ids
}

func pacedRun(b *testing.B, endpoints int, rate int, fifo bool) pacedResult {
	e := newEnv(b)
	e.cfg.Delivery.SweepInterval = config.DefaultDelivery().SweepInterval
	e.cfg.Delivery.LeaseTimeout = config.DefaultDelivery().LeaseTimeout
	if n, err := strconv.Atoi(os.Getenv("ETHHOOK_BENCH_RATE")); err == nil && n > 0 {
		rate = n // a lower rate, to measure CPU per webhook on a machine that cannot keep up
	}
	if n, err := strconv.Atoi(os.Getenv("ETHHOOK_BENCH_ENDPOINTS")); err == nil && n > 0 {
		endpoints = n // fewer endpoints with the lower rate keep each at 1 event/s
	}
	window := benchSeconds()
	var mu sync.Mutex
	var res pacedResult
	var first, last time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		time.Sleep(time.Millisecond)
		var sent int64
		if _, p, ok := strings.Cut(string(body), `"sent":`); ok {
			fmt.Sscanf(p, "%d", &sent)
		}
		now := time.Now()
		mu.Lock()
		res.lat = append(res.lat, now.Sub(time.Unix(0, sent)))
		if first.IsZero() {
			first = now
		}
		last = now
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	app := e.app(b, "unlimited")
	eps := e.manyEndpoints(b, app, srv.URL, endpoints, fifo)
	producer := testenv.NamedPool(b, e.pool, "producer")
	m, _ := e.start(b)
	if d, err := time.ParseDuration(os.Getenv("ETHHOOK_BENCH_LANE_LINGER")); err == nil && d > 0 {
		m.lanes.linger.Store(int64(d)) // how long idle lanes linger (1ns: they retire at once, as before lanes lingered)
	}
	time.Sleep(500 * time.Millisecond)
	ctx := context.Background()
	b.ResetTimer()
	cpu0 := processCPU()
	const tickEvery = 10 * time.Millisecond
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	start := time.Now()
	seq := 0
	for time.Since(start) < window {
		<-tick.C
		// Catch up on late ticks (a busy machine): the rate holds over the window.
		per := min(int(time.Since(start).Seconds()*float64(rate))-seq, rate/10)
		if per <= 0 {
			continue
		}
		committed := time.Now().UnixNano()
		rows := msgstate.MakeRows(per)
		jobs := make(rueidis.Commands, 0, per)
		for j := range per {
			ev := fmt.Sprintf("1:0x%064x:%d", seq, seq)
			rows.IDs[j], rows.AppIDs[j], rows.EndpointIDs[j] = "msg_"+ulid.Make().String(), app, eps[seq%len(eps)]
			rows.EventIDs[j], rows.Types[j], rows.WebhookIDs[j], rows.ChainIDs[j] = ev, "log", ev, 1
			rows.BlockNumbers[j], rows.LogIndexes[j] = int64(seq/100), int32(seq%100)
			rows.BlockHashes[j], rows.TxHashes[j] = fmt.Sprintf("0x%064x", seq/100), fmt.Sprintf("0x%064x", seq/4)
			rows.Payloads[j], rows.States[j] = fmt.Sprintf(`{"id":%q,"sent":%d}`, ev, committed), hook.StatePending
			if fifo {
				rows.FIFOKeys[j] = "1"
			}
			jobs = append(jobs, e.rdb.B().Xadd().Key(e.keys().DeliverJobs()).Id("*").FieldValue().
				FieldValue("message_id", rows.IDs[j]).FieldValue("endpoint_id", rows.EndpointIDs[j]).Build())
			seq++
		}
		// As process inserts (msgstate.Insert), on a pool of its own
		// (process is another module, often another process).
		got, err := msgstate.Insert(ctx, producer, &rows, false)
		if err == nil {
			got.Close()
			err = got.Err()
		}
		if err != nil {
			b.Fatal(err)
		}
		e.rdb.DoMulti(ctx, jobs...)
	}
	produced := seq
	time.Sleep(5 * time.Second)
	res.backlog = e.countRows(b, `SELECT count(*) FROM message_states WHERE state IN ('pending', 'delivering', 'failed')`)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		n := len(res.lat)
		mu.Unlock()
		if n >= produced || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cpu := processCPU() - cpu0
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	res.received = len(res.lat)
	res.window = last.Sub(first)
	if res.received < produced {
		b.Logf("received %d of %d within 2 min of the end", res.received, produced)
	}
	sort.Slice(res.lat, func(i, j int) bool { return res.lat[i] < res.lat[j] })
	if len(res.lat) > 0 {
		b.ReportMetric(float64(res.lat[len(res.lat)/2].Microseconds())/1000, "p50_ms")
		b.ReportMetric(float64(res.lat[len(res.lat)*99/100].Microseconds())/1000, "p99_ms")
	}
	b.ReportMetric(float64(res.received)/res.window.Seconds(), "webhooks/s")
	b.ReportMetric(float64(res.backlog), "backlog_after_5s")
	b.ReportMetric(float64(produced), "produced")
	// The CPU this process (deliver, producer and receiver) spent from the
	// first commit to the last webhook, per 1,000 produced: on a loaded
	// machine the wall-clock figures stretch, this much less.
	b.ReportMetric(float64(cpu.Milliseconds())/float64(max(produced, 1))*1000, "cpu_ms/1k")
	return res
}

// One hot endpoint at 2,000 events/s.
func BenchmarkPacedHotEndpoint2000PerSecond(b *testing.B) { pacedRun(b, 1, 2000, false) }

// 10,000 endpoints at 1 event/s each.
func BenchmarkPacedTenThousandEndpointsOnePerSecond(b *testing.B) { pacedRun(b, 10000, 10000, false) }

// One FIFO endpoint (one order) at 500 events/s.
func BenchmarkPacedFIFOEndpoint500PerSecond(b *testing.B) { pacedRun(b, 1, 500, true) }

// BenchmarkFIFOEndpointBacklog: one FIFO endpoint (one ordering group)
// answering in about 1 ms drains a backlog of b.N messages in order;
// reports webhooks/s. A FIFO group has one request in flight at a time, so
// this is bounded by 1 / (latency + per-message overhead).
//
//	go test -run '^$' -bench FIFOEndpointBacklog -benchtime 3000x ./modules/deliver/
func BenchmarkFIFOEndpointBacklog(b *testing.B) {
	e := newEnv(b)
	e.cfg.Delivery.SweepInterval = config.DefaultDelivery().SweepInterval
	var mu sync.Mutex
	var got []int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		time.Sleep(time.Millisecond)
		var n int
		if _, p, ok := strings.Cut(string(body), `"n":`); ok {
			fmt.Sscanf(p, "%d", &n)
		}
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	app := e.app(b, "unlimited")
	ep := e.manyEndpoints(b, app, srv.URL, 1, true)[0]
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `WITH m AS (INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id,
			block_number, log_index, fifo_key, payload)
		SELECT 'msg_' || lpad(i::text, 26, '0'), $1, $2, '1:0xabc:' || i, 'log', '1:0xabc:' || i, 1, i / 10, i % 10, '1',
		       json_build_object('n', i)
		FROM generate_series(0, $3 - 1) AS i RETURNING *)
		INSERT INTO message_states (id, app_id, endpoint_id, state, attempts, created_at, type, block_number, log_index, fifo_key)
		SELECT id, app_id, endpoint_id, 'pending', 0, created_at, type, block_number, log_index, fifo_key FROM m`, app, ep, b.N); err != nil {
		b.Fatal(err)
	}
	e.offer(b, "msg_none", ep) // one job: the lane pulls the rest
	b.ResetTimer()
	start := time.Now()
	e.start(b)
	for {
		var n int
		e.pool.QueryRow(ctx, `SELECT count(*) FROM message_states WHERE state = 'succeeded'`).Scan(&n)
		if n >= b.N {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1] {
			b.Fatalf("out of order: %d after %d", got[i], got[i-1])
		}
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "webhooks/s")
}

// processCPU is this process's user and system CPU time: a loaded machine
// stretches wall-clock figures, the CPU a webhook costs less so.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
