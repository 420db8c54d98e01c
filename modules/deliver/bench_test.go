package deliver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"
	"github.com/redis/rueidis"
)

// benchMessages inserts n pending messages spread over endpoints (as process
// does, with CopyFrom) and XADDs their jobs.
func benchMessages(b testing.TB, e *env, app string, eps []string, n int, payload func(i int) string) {
	b.Helper()
	ctx := context.Background()
	rows := make([][]any, 0, n)
	states := make([][]any, 0, n)
	jobs := make(rueidis.Commands, 0, n)
	for i := 0; i < n; i++ {
		id := "msg_" + ulid.Make().String()
		ep := eps[i%len(eps)]
		ev := fmt.Sprintf("1:0x%064x:%d", i, i)
		rows = append(rows, []any{id, app, ep, ev, "log", ev, int64(1), int64(i), payload(i)})
		states = append(states, []any{id, app, ep, "pending", "log", int64(i)})
		jobs = append(jobs, e.rdb.B().Xadd().Key(e.keys().DeliverJobs()).Id("*").FieldValue().
			FieldValue("message_id", id).FieldValue("endpoint_id", ep).Build())
	}
	if _, err := e.pool.CopyFrom(ctx, pgx.Identifier{"messages"},
		[]string{"id", "app_id", "endpoint_id", "event_id", "type", "webhook_id", "chain_id", "block_number", "payload"},
		pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	if _, err := e.pool.CopyFrom(ctx, pgx.Identifier{"message_states"},
		[]string{"id", "app_id", "endpoint_id", "state", "type", "block_number"},
		pgx.CopyFromRows(states)); err != nil {
		b.Fatal(err)
	}
	for len(jobs) > 0 {
		k := min(len(jobs), 2000)
		for _, r := range e.rdb.DoMulti(ctx, jobs[:k]...) {
			if err := r.Error(); err != nil {
				b.Fatal(err)
			}
		}
		jobs = jobs[k:]
	}
}

func benchReceiver(b *testing.B, onBody func([]byte)) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if onBody != nil {
			onBody(body)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkDeliverThroughput100Endpoints: b.N webhooks to 100 endpoints on
// one local receiver, each signed, POSTed, logged in delivery_history, its
// message marked succeeded and counted in usage.
//
//	go test -run '^$' -bench DeliverThroughput -benchtime 20000x ./modules/deliver/
func BenchmarkDeliverThroughput100Endpoints(b *testing.B) {
	e := newEnv(b)
	var got atomic.Int64
	srv := benchReceiver(b, func([]byte) { got.Add(1) })
	app := e.app(b, "unlimited")
	eps := make([]string, 100)
	for i := range eps {
		eps[i], _ = e.endpoint(b, app, srv.URL, epOpt{})
	}
	payload := `{"id":"1:0xabc:%d","type":"log","chain":{"id":1,"name":"eth"},"block":{"number":%d,"hash":"0x` + strings.Repeat("ab", 32) +
		`","timestamp":1700000000},"transaction":{"hash":"0x` + strings.Repeat("cd", 32) + `","index":3},"log":{"address":"0x` +
		strings.Repeat("ef", 20) + `","topics":["0x` + strings.Repeat("12", 32) + `"],"data":"0x` + strings.Repeat("00", 64) + `","index":%d}}`
	benchMessages(b, e, app, eps, b.N, func(i int) string { return fmt.Sprintf(payload, i, i, i) })
	b.ResetTimer()
	start := time.Now()
	e.start(b)
	for got.Load() < int64(b.N) {
		time.Sleep(5 * time.Millisecond)
	}
	recvd := time.Since(start)
	for {
		var n int
		e.pool.QueryRow(context.Background(), `SELECT count(*) FROM message_states WHERE state = 'succeeded'`).Scan(&n)
		if n >= b.N {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	var logged int
	e.pool.QueryRow(context.Background(), `SELECT count(*) FROM delivery_history WHERE status_code = 204`).Scan(&logged)
	if logged < b.N || got.Load() < int64(b.N) {
		b.Fatalf("logged %d, received %d, want %d", logged, got.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "webhooks/s")
	b.ReportMetric(float64(b.N)/recvd.Seconds(), "received/s")
}

// BenchmarkCommittedToReceivedLatency: a producer commits messages at
// 1,000/s (INSERT then XADD, as process does); the receiver measures the
// time from the commit to the request's arrival. Reports p50 and p99 in ms.
//
//	go test -run '^$' -bench CommittedToReceived -benchtime 5000x ./modules/deliver/
func BenchmarkCommittedToReceivedLatency(b *testing.B) {
	e := newEnv(b)
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	srv := benchReceiver(b, func(body []byte) {
		var sent int64
		if _, p, ok := strings.Cut(string(body), `"sent":`); ok {
			fmt.Sscanf(p, "%d", &sent)
		}
		d := time.Since(time.Unix(0, sent))
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
	})
	app := e.app(b, "unlimited")
	eps := make([]string, 100)
	for i := range eps {
		eps[i], _ = e.endpoint(b, app, srv.URL, epOpt{})
	}
	e.start(b)
	time.Sleep(300 * time.Millisecond)
	ctx := context.Background()
	b.ResetTimer()
	tick := time.NewTicker(10 * time.Millisecond) // 10 messages per tick = 1,000/s
	defer tick.Stop()
	for i := 0; i < b.N; {
		<-tick.C
		k := min(10, b.N-i)
		batch := &pgx.Batch{}
		jobs := make(rueidis.Commands, 0, k)
		committed := time.Now().UnixNano()
		for j := 0; j < k; j++ {
			id := "msg_" + ulid.Make().String()
			ep := eps[(i+j)%len(eps)]
			ev := fmt.Sprintf("1:0x%064x:%d", i+j, i+j)
			batch.Queue(`WITH m AS (INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload)
				VALUES ($1, $2, $3, $4, 'log', $4, 1, $5, $6) RETURNING *)
				INSERT INTO message_states (id, app_id, endpoint_id, state, attempts, created_at, type, block_number, log_index, fifo_key)
				SELECT id, app_id, endpoint_id, 'pending', 0, created_at, type, block_number, log_index, fifo_key FROM m`, id, app, ep, ev, i+j, fmt.Sprintf(`{"id":%q,"sent":%d}`, ev, committed))
			jobs = append(jobs, e.rdb.B().Xadd().Key(e.keys().DeliverJobs()).Id("*").FieldValue().
				FieldValue("message_id", id).FieldValue("endpoint_id", ep).Build())
		}
		if err := e.pool.SendBatch(ctx, batch).Close(); err != nil {
			b.Fatal(err)
		}
		e.rdb.DoMulti(ctx, jobs...)
		i += k
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= b.N || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	if len(lat) < b.N {
		b.Fatalf("received %d of %d", len(lat), b.N)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}
