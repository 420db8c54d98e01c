package deliver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethhook/ethhook/config"
)

// BenchmarkHotEndpointBacklog: one endpoint answering in about 1 ms drains
// a backlog of b.N messages (jobs in the stream, messages pending), with the
// production defaults for the sweep interval, per-endpoint concurrency and
// queue. Reports webhooks/s from the module's start to the last message
// recorded succeeded (issue 12: one busy endpoint was capped near
// queue_per_endpoint / sweep_interval).
//
//	go test -run '^$' -bench HotEndpointBacklog -benchtime 3000x ./modules/deliver/
func BenchmarkHotEndpointBacklog(b *testing.B) {
	e := newEnv(b)
	e.cfg.Delivery.SweepInterval = config.DefaultDelivery().SweepInterval
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond)
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	app := e.app(b, "unlimited")
	ep, _ := e.endpoint(b, app, srv.URL, epOpt{})
	benchMessages(b, e, app, []string{ep}, b.N, func(i int) string { return fmt.Sprintf(`{"id":"1:0xabc:%d","type":"log"}`, i) })
	b.ResetTimer()
	start := time.Now()
	e.start(b)
	ctx := context.Background()
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
	b.ReportMetric(float64(b.N)/el.Seconds(), "webhooks/s")
	b.ReportMetric(float64(got.Load())/float64(b.N), "requests/webhook")
}
