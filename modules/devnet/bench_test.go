package devnet

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// BenchmarkGetLogsRange serves eth_getLogs for 10 blocks of 1,000 logs each
// over one WebSocket, the way a backfill does, and reports logs/s and the
// wire bytes per log.
func BenchmarkGetLogsRange(b *testing.B) {
	n, srv := startNode(b, Config{Seed: 1, LogsPerBlock: 1000, FixedLogs: true})
	n.Mine(100)
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(256 << 20)
	const span = 10
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		from := uint64(1 + (i*span)%90)
		req := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"eth_getLogs","params":[{"fromBlock":"0x%x","toBlock":"0x%x"}]}`, i, from, from+span-1)
		if err := c.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
			b.Fatal(err)
		}
		_, data, err := c.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		bytes += int64(len(data))
	}
	b.StopTimer()
	logs := float64(b.N * span * 1000)
	b.ReportMetric(logs/b.Elapsed().Seconds(), "logs/s")
	b.ReportMetric(float64(bytes)/logs, "B/log")
}

// BenchmarkMineBlock1000Logs measures generating one 1,000-log block
// (logs, ABI data, bloom, hashes and precomputed JSON).
func BenchmarkMineBlock1000Logs(b *testing.B) {
	n := New(Config{Seed: 1, LogsPerBlock: 1000, FixedLogs: true})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n.Mine(1)
		if i%500 == 499 { // bound memory
			b.StopTimer()
			n = New(Config{Seed: int64(i), LogsPerBlock: 1000, FixedLogs: true})
			b.StartTimer()
		}
	}
	b.ReportMetric(1000*float64(b.N)/b.Elapsed().Seconds(), "logs/s")
	_ = time.Second
}
