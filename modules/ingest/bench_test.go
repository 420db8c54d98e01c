package ingest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/modules/devnet"
)

// BenchmarkBackfill measures ranged backfill from the devnet (WebSocket,
// blocks of 1,000 logs) into the stream, dedup and atomic commit included:
// each iteration ingests the same 60,000 logs under a fresh key prefix.
func BenchmarkBackfill(b *testing.B) {
	const blocks, perBlock = 60, 1000
	e := newEnv(b, devnet.Config{Seed: 20, LogsPerBlock: perBlock, FixedLogs: true})
	e.cfg.Ingest.MaxLogRange = 10
	e.node.Mine(blocks)
	base := e.prefix
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e.prefix = fmt.Sprintf("%sb%d:", base, i)
		e.cfg.Redis.Prefix = e.prefix
		b.StartTimer()
		start := time.Now()
		r := e.start(nil)
		e.waitCaughtUp()
		total += time.Since(start)
		b.StopTimer()
		r.stop()
		testenv.DeleteKeys(context.Background(), e.rdb, e.prefix)
		b.StartTimer()
	}
	b.ReportMetric(float64(blocks*perBlock*b.N)/total.Seconds(), "logs/s")
}

// BenchmarkHeadToStream measures live latency from a mined head (blocks of
// 1,000 logs) to the block's last entry readable in the stream.
func BenchmarkHeadToStream(b *testing.B) {
	const perBlock = 1000
	e := newEnv(b, devnet.Config{Seed: 21, LogsPerBlock: perBlock, FixedLogs: true})
	e.cfg.Ingest.HeadPollInterval = 10 * time.Second // heads only, no polling
	e.start(nil)
	e.waitCaughtUp()
	key := hook.Keys{Prefix: e.prefix}.Events(testChainID)
	ctx := context.Background()
	last := "$"
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		blk := e.node.Mine(1)[0]
		t0 := time.Now()
		want := hook.EventID(testChainID, strings.ToLower(blk.Hash.Hex()), perBlock-1)
		for done := false; !done; {
			res, err := e.rdb.Do(ctx, e.rdb.B().Xread().Count(perBlock).Block(5000).Streams().Key(key).Id(last).Build()).AsXRead()
			if err != nil {
				b.Fatalf("xread: %v", err)
			}
			for _, x := range res[key] {
				last = x.ID
				if x.FieldValues["id"] == want {
					done = true
				}
			}
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(perBlock), "logs/block")
}
