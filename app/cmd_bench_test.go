package app

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/bench"
	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/internal/testenv"
)

func TestBenchRunsThePipelineAndReportsConsistentFigures(t *testing.T) {
	cfg := config.Defaults()
	cfg.DatabaseURL = testenv.PGURL(t)
	cfg.Redis.URL = testenv.RedisURL()
	rt := &Runtime{Cfg: cfg}
	defer rt.Close()
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "mem.pprof")
	out, err := runCmd(t, newBenchCmd(rt), "--endpoints", "3", "--rate", "200", "--logs-per-block", "20",
		"--warmup", "1s", "--duration", "3s", "--drain", "30s", "--json", "--cpuprofile", cpu, "--memprofile", mem)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	for _, p := range []string{cpu, mem} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Fatalf("profile %s not written: %v", p, err)
		}
	}
	var r bench.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	if r.Mined <= 0 || r.IngestedInWindow <= 0 || r.EventsPerSec <= 0 || r.Window.Messages <= 0 || r.WebhooksPerSec <= 0 {
		t.Fatalf("throughput missing: %s", out)
	}
	if r.MinedToStream.N <= 0 || r.MinedToStream.P99 < r.MinedToStream.P50 || r.MinedToReceived.N <= 0 ||
		r.MinedToReceived.P99 < r.MinedToReceived.P50 || r.StreamToQueued.N <= 0 || r.PeakRSSMB <= 0 || r.Window.CPUSeconds <= 0 {
		t.Fatalf("latency, memory or CPU missing: %s", out)
	}
	// From the stream entry is from mined less a block's time to the stream
	// (1 ms of slack: stream ids are whole milliseconds of Redis's clock).
	if s, m := r.StreamToReceived, r.MinedToReceived; s.N != m.N || s.P50 > m.P50+1 || s.P99 > m.P99+1 || s.P99 < s.P50 {
		t.Fatalf("stream entry -> received inconsistent with mined -> received: %+v vs %+v", s, m)
	}
	// Every log matched every endpoint; every received webhook was valid and
	// nothing was delivered that was not queued.
	if r.Rejected != 0 || r.Verified != r.Received || r.Succeeded > r.MessagesQueuedTotal || r.DeliveredInWindow > r.MessagesQueuedTotal ||
		r.MessagesQueuedTotal != 3*r.EventsProcessedTotal {
		t.Fatalf("inconsistent: %s", out)
	}
	if r.Succeeded != r.MessagesQueuedTotal || r.Verified < r.Succeeded {
		t.Fatalf("not every queued message was delivered and marked succeeded after the drain: %s", out)
	}
	// The run deleted its application and keys.
	pool, err := rt.Postgres(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM applications WHERE id = $1`, r.AppID).Scan(&n); err != nil || n != 0 {
		t.Fatalf("application left behind: %d %v", n, err)
	}
	rdb, err := rt.Redis()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Do(context.Background(), rdb.B().Keys().Pattern(r.RedisPrefix+"*").Build()).AsStrSlice()
	if err != nil || len(keys) != 0 {
		t.Fatalf("redis keys left behind: %v %v", keys, err)
	}
}

func TestBenchRejectsBadOptionsBeforeConnecting(t *testing.T) {
	rt := &Runtime{Cfg: config.Defaults()}
	if _, err := runCmd(t, newBenchCmd(rt), "--endpoints", "0"); err == nil {
		t.Fatal("--endpoints 0 accepted")
	}
	for _, args := range [][]string{{"--ordering", "lifo"}, {"--fifo-key", "topic1"}, {"--ordering", "fifo", "--fifo-key", "tx_from"}, {"--signature", "rsa"}} {
		if _, err := runCmd(t, newBenchCmd(rt), args...); err == nil || !strings.Contains(err.Error(), args[len(args)-2]) {
			t.Fatalf("%v: %v", args, err)
		}
	}
}

// --ordering fifo --fifo-key and --signature ed25519 reach the endpoints
// the run creates (as stored), and the run still delivers everything,
// every webhook verified with the whpk_ key.
func TestBenchOrderingAndSignatureFlagsReachItsEndpoints(t *testing.T) {
	cfg := config.Defaults()
	cfg.DatabaseURL = testenv.PGURL(t)
	cfg.Redis.URL = testenv.RedisURL()
	rt := &Runtime{Cfg: cfg}
	defer rt.Close()
	out, err := runCmd(t, newBenchCmd(rt), "--endpoints", "2", "--rate", "100", "--logs-per-block", "10",
		"--warmup", "1s", "--duration", "2s", "--drain", "60s", "--ordering", "fifo", "--fifo-key", "topic1", "--signature", "ed25519", "--json")
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	var r bench.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	if r.Ordering != "fifo" || r.FIFOKey != "topic1" || r.Signature != "ed25519" {
		t.Fatalf("endpoints created with ordering %q fifo_key %q signature %q", r.Ordering, r.FIFOKey, r.Signature)
	}
	if r.Received <= 0 || r.Rejected != 0 || r.Verified != r.Received || r.Succeeded != r.MessagesQueuedTotal {
		t.Fatalf("not every webhook delivered and verified: %s", out)
	}
}

var _ = bench.PlanID
