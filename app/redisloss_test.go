package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/chaincursor"
	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/modules/devnet"
	"github.com/ethhook/ethhook/modules/ingest"
)

// privateRedis is a redis-server of the test's own (never the shared one:
// these tests flush and kill it), without persistence, so a restart comes
// back empty.
type privateRedis struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skipf("needs redis-server: %v", err)
	}
	r := &privateRedis{t: t, port: freePort(t), dir: t.TempDir()}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *privateRedis) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *privateRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := openRedis(r.url()) // it dials at once
		if err == nil {
			err = c.Do(context.Background(), c.B().Ping().Build()).Error()
			c.Close()
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			r.t.Fatalf("redis-server on %d not up:\n%s", r.port, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops redis-server with SIGKILL: everything it held is gone.
func (r *privateRedis) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// pipeline is ingest and process against a devnet, a private Redis and
// a fresh database, with two endpoints that match every log: one delivered
// at once, one held for confirmations.
type pipeline struct {
	t          *testing.T
	node       *devnet.Node
	redis      *privateRedis
	rdb        rueidis.Client
	pool       *pgxpool.Pool
	direct     string // endpoint ids
	confirmed  string
	confirms   uint64
	from       uint64 // the first block ingest committed
	stopMining func()
	// startProcess starts a process module; stopProcess stops it.
	startProcess, stopProcess func()
	// startIngest starts an ingest module (a new process: nothing in
	// memory); stopIngest stops it.
	startIngest, stopIngest func()
	ingestMetrics           *prometheus.Registry // the running ingest's
	stack                   *devnetStack
}

// reconnects is ethhook_ingest_reconnects_total of the running ingest.
func (p *pipeline) reconnects() float64 {
	p.t.Helper()
	mfs, err := p.ingestMetrics.Gather()
	if err != nil {
		p.t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "ethhook_ingest_reconnects_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// cursor is ingest's cursor in Redis (unset while it has none).
func (p *pipeline) cursor() hook.Cursor { return p.stack.cursor() }

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	p := &pipeline{t: t, redis: startPrivateRedis(t), confirms: 3}
	node := devnet.New(devnet.Config{ChainID: config.DevnetChainID, Seed: 14, LogsPerBlock: 4})
	p.node = node
	rdb, err := openRedis(p.redis.url())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rdb.Close)
	p.rdb = rdb
	// No start_block, as for a real chain: with no cursor ingest starts
	// at the head (what made an emptied Redis skip blocks).
	s := newDevnetStack(t, node, stackConfig{name: "redisloss", redis: rdb, prefix: "ethhook:", chain: config.Chain{ReorgDepth: 16}})
	p.pool, p.stack = s.pool, s

	ctx := context.Background()
	for _, c := range []struct {
		id    *string
		confs int
	}{{&p.direct, 0}, {&p.confirmed, int(p.confirms)}} {
		confs := c.confs
		ep, _, err := s.svc.Create(ctx, hook.Operator, s.appID, endpoint.Input{URL: "https://receiver.example/hook",
			Filter: hook.Filter{Chains: []uint64{config.DevnetChainID}}, Confirmations: &confs})
		if err != nil {
			t.Fatal(err)
		}
		*c.id = ep.ID
	}

	p.startIngest = func() {
		p.ingestMetrics = prometheus.NewRegistry()
		p.stopIngest = s.run(s.newIngest(p.ingestMetrics, ingest.Options{}))
	}
	p.startIngest()
	p.startProcess = func() { p.stopProcess = s.run(s.newProcess()) }
	p.startProcess()

	// Mining starts once ingest committed its first block (the head): the
	// logs from there on must all arrive.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c := s.cursor(); c.Set {
			p.from = c.Number
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ingest committed no block within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	mctx, stop := context.WithCancel(context.Background())
	var mw sync.WaitGroup
	mw.Add(1)
	go func() {
		defer mw.Done()
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-mctx.Done():
				return
			case <-tick.C:
				node.Mine(1)
			}
		}
	}()
	p.stopMining = func() { stop(); mw.Wait() }
	t.Cleanup(p.stopMining)
	return p
}

// messageCounts is how many log messages the endpoint has per event id.
func (p *pipeline) messageCounts(endpointID string) map[string]int {
	p.t.Helper()
	rows, err := p.pool.Query(context.Background(), `SELECT event_id, count(*) FROM messages WHERE endpoint_id = $1 AND type = 'log' GROUP BY event_id`, endpointID)
	if err != nil {
		p.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			p.t.Fatal(err)
		}
		out[id] = n
	}
	return out
}

// waitBlocks waits until the direct endpoint has messages of block n.
func (p *pipeline) waitBlocks(n uint64) {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var got int64
		if err := p.pool.QueryRow(context.Background(), `SELECT coalesce(max(block_number), 0) FROM messages WHERE endpoint_id = $1`, p.direct).Scan(&got); err == nil && uint64(got) >= n {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no message of block %d within 60s", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDurable waits until process has stored a durable cursor: before
// that, a fresh deployment whose Redis is lost has nothing to resume from
// but ingest's own memory.
func (p *pipeline) waitDurable() {
	p.t.Helper()
	store := chaincursor.New(p.pool)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := store.Load(context.Background(), config.DevnetChainID); err == nil && c.Set {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatal("process stored no durable cursor within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkExactlyOnce stops mining and waits (bounded) until every canonical
// log has exactly one message per endpoint (the held endpoint's up to the
// confirmed depth); it fails naming what is missing or doubled.
func (p *pipeline) checkExactlyOnce() {
	p.t.Helper()
	p.stopMining()
	head := p.node.Head().Number
	deadline := time.Now().Add(60 * time.Second)
	for {
		problem := ""
		for _, ep := range []struct {
			id string
			to uint64
		}{{p.direct, head}, {p.confirmed, head - p.confirms}} {
			got := p.messageCounts(ep.id)
			missing, firstMissing := 0, uint64(0)
			for _, l := range p.node.CanonicalLogs(p.from, ep.to) {
				id := hook.EventID(config.DevnetChainID, l.BlockHash.Hex(), l.Index)
				if got[id] == 0 {
					if missing == 0 {
						firstMissing = l.BlockNumber
					}
					missing++
				}
				if got[id] > 1 {
					p.t.Fatalf("endpoint %s: %d messages for %s", ep.id, got[id], id)
				}
				delete(got, id)
			}
			for id := range got {
				p.t.Fatalf("endpoint %s: a message for %s, not a canonical log up to block %d", ep.id, id, ep.to)
			}
			if missing > 0 && problem == "" {
				problem = fmt.Sprintf("endpoint %s: %d canonical logs up to block %d have no message (first in block %d)", ep.id, missing, ep.to, firstMissing)
			}
		}
		if problem == "" {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatal(problem)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRedisFlushedMidRunLosesNoBlock: FLUSHALL while blocks flow and
// process is behind (down for a moment: entries wait in the stream).
// Ingest resumes from the durable cursor and publishes again what process
// had not handled; every canonical log ends up as exactly one message per
// endpoint.
func TestRedisFlushedMidRunLosesNoBlock(t *testing.T) {
	p := newPipeline(t)
	p.waitBlocks(20)
	p.waitDurable()
	p.stopProcess()
	behind := p.cursor().Number + 10
	deadline := time.Now().Add(30 * time.Second)
	for p.cursor().Number < behind {
		if time.Now().After(deadline) {
			t.Fatal("ingest did not go on while process was down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.rdb.Do(context.Background(), p.rdb.B().Flushall().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	p.startProcess()
	at := p.node.Head().Number
	p.waitBlocks(at + 20)
	p.checkExactlyOnce()
}

// TestRedisRestartedEmptyMidRunLosesNoBlock: redis-server killed and
// started again without its data while blocks flow (blocks are mined while
// it is down); no block is skipped and none is delivered twice.
func TestRedisRestartedEmptyMidRunLosesNoBlock(t *testing.T) {
	p := newPipeline(t)
	p.waitBlocks(20)
	p.waitDurable()
	p.redis.kill()
	time.Sleep(500 * time.Millisecond) // blocks go on being mined meanwhile
	p.redis.start()
	at := p.node.Head().Number
	p.waitBlocks(at + 20)
	p.checkExactlyOnce()
}

// TestRedisEmptyUnderARestartedIngestLosesNoBlock: ingest and Redis go
// down together (a machine restart) while blocks are mined; a new ingest
// process, with nothing in memory, starts on an empty Redis.
func TestRedisEmptyUnderARestartedIngestLosesNoBlock(t *testing.T) {
	p := newPipeline(t)
	p.waitBlocks(20)
	p.waitDurable()
	p.stopIngest()
	p.redis.kill()
	time.Sleep(500 * time.Millisecond) // blocks go on being mined meanwhile
	p.redis.start()
	p.startIngest()
	at := p.node.Head().Number
	p.waitBlocks(at + 20)
	p.checkExactlyOnce()
}

// TestRedisFullLosesNoBlock: Redis reaches its maxmemory with the
// noeviction policy (set to 1 byte here, so every write is refused with
// OOM) for two seconds while blocks are mined; once memory is freed every
// canonical log ends up as exactly one message per endpoint. Ingest keeps
// its node session meanwhile and tries the commit again (commitRetrying):
// no reconnect, whose backoff would hold it back after a long outage.
func TestRedisFullLosesNoBlock(t *testing.T) {
	p := newPipeline(t)
	p.waitBlocks(20)
	ctx := context.Background()
	before := p.reconnects()
	setMax := func(v string) {
		t.Helper()
		if err := p.rdb.Do(ctx, p.rdb.B().ConfigSet().ParameterValue().ParameterValue("maxmemory", v).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	setMax("1")
	err := p.rdb.Do(ctx, p.rdb.B().Set().Key("ethhook:probe").Value("x").Build()).Error()
	if err == nil || !strings.Contains(err.Error(), "OOM") {
		t.Fatalf("a write to the full Redis: %v, want OOM", err)
	}
	time.Sleep(2 * time.Second) // blocks go on being mined meanwhile
	setMax("0")
	at := p.node.Head().Number
	p.waitBlocks(at + 20)
	p.checkExactlyOnce()
	if n := p.reconnects() - before; n != 0 {
		t.Errorf("ingest reconnected to the node %v times while Redis was full, want 0", n)
	}
}
