package app

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/modules/devnet"
)

// BenchmarkHistoryWhileLive measures an endpoint's history backfill
// (events/s from the history's start to done) while live traffic runs,
// and the live path's latency (block mined -> message committed) p99
// before and during the history. One run per invocation (b.N ignored):
//
//	go test -run '^$' -bench BenchmarkHistoryWhileLive -benchtime 1x ./app/
func BenchmarkHistoryWhileLive(b *testing.B) {
	for _, c := range []struct {
		name string
		rate int
	}{{"throttled-default", 0}, {"unthrottled", 1_000_000}} {
		b.Run(c.name, func(b *testing.B) { benchHistory(b, c.rate) })
	}
}

func benchHistory(b *testing.B, rate int) {
	const premine, logs = 2000, 10 // 20,000 historical events
	e := newHistEnv(b, devnet.Config{Seed: 5, LogsPerBlock: logs, FixedLogs: true}, premine)
	e.rate = rate
	e.histOpt.Grace = 100 * time.Millisecond
	live := e.create(endpoint.Input{URL: "https://receiver.example/live", Filter: hook.Filter{Chains: []uint64{config.DevnetChainID}}})
	e.startIngest()
	e.startProcess()
	e.waitFor("ingest's first block", func() bool { return e.cursor() > 0 })

	// Live traffic: 20 blocks/s x 10 logs = 200 events/s, mine times kept.
	var mu sync.Mutex
	mined := map[uint64]time.Time{}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				bl := e.node.Mine(1)
				mu.Lock()
				mined[bl[0].Number] = time.Now()
				mu.Unlock()
			}
		}
	}()
	defer func() { stop(); wg.Wait() }()
	p99 := func(fromT, toT time.Time) (time.Duration, int) {
		rows, err := e.pool.Query(context.Background(), `SELECT block_number, created_at FROM messages WHERE endpoint_id = $1 AND type = 'log'`, live.ID)
		if err != nil {
			b.Fatal(err)
		}
		defer rows.Close()
		var lats []time.Duration
		mu.Lock()
		defer mu.Unlock()
		for rows.Next() {
			var n int64
			var at time.Time
			if err := rows.Scan(&n, &at); err != nil {
				b.Fatal(err)
			}
			if t, ok := mined[uint64(n)]; ok && !t.Before(fromT) && t.Before(toT) {
				lats = append(lats, at.Sub(t))
			}
		}
		if len(lats) == 0 {
			return 0, 0
		}
		sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
		return lats[len(lats)*99/100], len(lats)
	}

	time.Sleep(time.Second) // warm up
	baseFrom := time.Now()
	time.Sleep(5 * time.Second)
	baseTo := time.Now()

	from := uint64(1)
	ep := e.create(endpoint.Input{URL: "https://receiver.example/hist", FromBlock: &from, Filter: hook.Filter{Chains: []uint64{config.DevnetChainID}}})
	e.waitFor("history started", func() bool { return e.history(ep.ID).ToBlock != nil })
	start := time.Now()
	e.waitDone(ep.ID)
	took := time.Since(start)
	end := time.Now()
	time.Sleep(2 * time.Second) // let the last live blocks land
	h := e.history(ep.ID)
	base, nb := p99(baseFrom, baseTo)
	during, nd := p99(start, end)
	b.ReportMetric(float64(h.Events)/took.Seconds(), "history_events/s")
	b.ReportMetric(float64(h.Events), "history_events")
	b.ReportMetric(float64(base.Milliseconds()), "live_p99_ms_before")
	b.ReportMetric(float64(during.Milliseconds()), "live_p99_ms_during")
	b.Logf("history of %d events (blocks %d..%d) in %s; live p99 %s over %d events before, %s over %d events during",
		h.Events, h.FromBlock, *h.ToBlock, took.Round(time.Millisecond), base, nb, during, nd)
}
