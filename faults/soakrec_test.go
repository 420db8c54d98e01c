//go:build faults && soak

package faults

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// soakSample is one row of the soak's table.
type soakSample struct {
	elapsed    time.Duration
	rss        float64 // bytes, serve --all
	goroutines float64 // serve --all, from its /metrics
	dbSize     float64 // bytes, pg_database_size
	redisMem   float64 // bytes, INFO memory used_memory
	backlog    float64 // messages not yet delivered (pending, delivering, failed awaiting a retry)
	p99        time.Duration
	acks       int     // webhooks acknowledged during the interval
	ackRate    float64 // of them per second
	head       uint64  // the devnet's head block
}

func (s soakSample) String() string {
	return fmt.Sprintf("t=%-6s rss=%.0fMiB goroutines=%.0f db=%.0fMiB redis=%.1fMiB backlog=%.0f p99=%s acked=%.0f/s head=%d",
		s.elapsed.Round(time.Second), s.rss/(1<<20), s.goroutines, s.dbSize/(1<<20), s.redisMem/(1<<20), s.backlog,
		s.p99.Round(time.Millisecond), s.ackRate, s.head)
}

var soakHeader = []string{"elapsed_s", "rss_bytes", "goroutines", "database_bytes", "redis_used_memory_bytes", "backlog_messages",
	"p99_latency_ms", "acked_per_s", "head_block"}

func (s soakSample) row() []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	return []string{f(s.elapsed.Seconds()), f(s.rss), f(s.goroutines), f(s.dbSize), f(s.redisMem), f(s.backlog),
		strconv.FormatInt(s.p99.Milliseconds(), 10), strconv.FormatFloat(s.ackRate, 'f', 1, 64), strconv.FormatUint(s.head, 10)}
}

// soakRecorder collects what the receiver sees (latency from the block's
// mining to the acknowledgement, per interval) and samples the rest.
type soakRecorder struct {
	c *cluster

	mu      sync.Mutex
	lat     []time.Duration // this interval's latencies
	acks    int             // this interval's acknowledgements
	total   int
	noBlock int // webhooks whose block the watcher never saw (none expected)
	last    time.Duration
}

func newSoakRecorder(c *cluster) *soakRecorder { return &soakRecorder{c: c} }

// ack is the receiver's onAck: the signature is verified already.
func (s *soakRecorder) ack(_ string, body []byte, now time.Time) {
	var p struct {
		Block struct {
			Number uint64 `json:"number"`
		} `json:"block"`
	}
	_ = json.Unmarshal(body, &p)
	mined := s.c.devnet.minedAt(p.Block.Number)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acks++
	s.total++
	if mined.IsZero() {
		s.noBlock++
		return
	}
	// Bound: one interval at 20,000/s for a minute is 1.2 M durations
	// (10 MB); past 2 M the rest of the interval is not sampled.
	if len(s.lat) < 2_000_000 {
		s.lat = append(s.lat, now.Sub(mined))
	}
}

func (s *soakRecorder) totalAcks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

func (s *soakRecorder) badSignatures() int {
	r := s.c.recv
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ep := range r.eps {
		n += ep.badSig
	}
	return n
}

// take reads one sample and starts the next interval.
func (s *soakRecorder) take(serve *proc, elapsed time.Duration) soakSample {
	s.mu.Lock()
	lat, acks, since := s.lat, s.acks, elapsed-s.last
	s.lat, s.acks, s.last = nil, 0, elapsed
	s.mu.Unlock()

	smp := soakSample{elapsed: elapsed, acks: acks, ackRate: float64(acks) / since.Seconds()}
	if len(lat) > 0 {
		slices.Sort(lat)
		smp.p99 = lat[min(len(lat)-1, int(float64(len(lat))*0.99))]
	}
	smp.rss = rssOf(serve.pid())
	smp.goroutines = serve.metric("go_goroutines ")
	// A scrape times out (2 s) on a starved machine: try again a few times
	// rather than record -1.
	for i := 0; i < 5 && smp.goroutines < 0 && serve.running(); i++ {
		time.Sleep(time.Second)
		smp.goroutines = serve.metric("go_goroutines ")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var db int64
	if err := s.c.pool.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&db); err != nil {
		s.c.t.Logf("soak: database size: %v", err)
	}
	smp.dbSize = float64(db)
	var backlog int64
	if err := s.c.pool.QueryRow(ctx, `SELECT count(*) FROM message_states WHERE state IN ('pending', 'delivering', 'failed')`).Scan(&backlog); err != nil {
		s.c.t.Logf("soak: backlog: %v", err)
	}
	smp.backlog = float64(backlog)
	smp.redisMem = redisUsedMemory(s.c.redis.port)
	if h, err := s.c.devnet.head(); err == nil {
		smp.head = h.Number
	}
	return smp
}

// minedLogs is how many logs the devnet mined since the soak's first block
// (a fixed number per block).
func (c *cluster) minedLogs() uint64 {
	h, err := c.devnet.head()
	if err != nil || h.Number < c.firstBlock {
		return 0
	}
	return (h.Number - c.firstBlock + 1) * uint64(c.opt.logsPerBlock)
}

// pid is the process's current pid, or 0.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// rssOf reads VmRSS of a process in bytes (-1 when it cannot).
func rssOf(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil || pid == 0 {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb * 1024
		}
	}
	return -1
}

// redisUsedMemory reads used_memory from INFO memory (-1 when it cannot).
func redisUsedMemory(port int) float64 {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		return -1
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "INFO memory\r\n")
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "used_memory:"); ok {
			n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return n
		}
	}
	return -1
}

func writeSoakCSV(path string, samples []soakSample) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write(soakHeader)
	for _, s := range samples {
		w.Write(s.row())
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
