package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Millis is a duration shown in milliseconds.
type Millis time.Duration

// MarshalJSON writes the duration as milliseconds.
func (m Millis) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf("%g", float64(m)/float64(time.Millisecond))), nil
}

// UnmarshalJSON reads milliseconds.
func (m *Millis) UnmarshalJSON(b []byte) error {
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return err
	}
	*m = Millis(ms * float64(time.Millisecond))
	return nil
}

func (m Millis) String() string { return time.Duration(m).String() }

// Dist is a latency distribution in milliseconds, from every sample.
type Dist struct {
	N       int64   `json:"n"`
	Missing int64   `json:"missing,omitempty"` // samples expected but never seen
	P50     float64 `json:"p50_ms"`
	P95     float64 `json:"p95_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
}

// HistDist is a latency distribution from a bucketed histogram: each
// percentile is the upper bound of the bucket holding it (-1: beyond the
// last bucket).
type HistDist struct {
	N       int64    `json:"n"`
	P50     float64  `json:"p50_le_ms"`
	P95     float64  `json:"p95_le_ms"`
	P99     float64  `json:"p99_le_ms"`
	Buckets []Bucket `json:"buckets,omitempty"`
}

// Bucket is the share of observations at or below a histogram bound.
type Bucket struct {
	LEms  float64 `json:"le_ms"`
	Share float64 `json:"share_at_or_below"`
}

// Window is what process and the CPU did during the measured window.
type Window struct {
	Events              int64   `json:"process_events"`
	ProcessEventsPerSec float64 `json:"process_events_per_sec"`
	Messages            int64   `json:"messages_queued"`
	MessagesPerSec      float64 `json:"messages_per_sec"`
	CPUSeconds          float64 `json:"cpu_seconds"`
	CPUCores            float64 `json:"cpu_cores"`
}

// Host is what the rest of the machine did during the window.
type Host struct {
	MachineBusy   float64 `json:"machine_busy"`   // share of all CPUs busy (every process)
	RedisCores    float64 `json:"redis_cores"`    // redis-server processes
	PostgresCores float64 `json:"postgres_cores"` // every postgres process (shared with other users)
}

// Result is everything one run measured.
type Result struct {
	// The load asked for.
	Endpoints     int     `json:"endpoints"`
	ShareTarget   float64 `json:"share_target"`
	ShareNominal  float64 `json:"share_nominal"` // what the filters select on a sample of the devnet's logs
	RateTarget    float64 `json:"rate_target"`
	LogsPerBlock  int     `json:"logs_per_block"`
	BlockInterval Millis  `json:"block_interval_ms"`
	Warmup        Millis  `json:"warmup_ms"`
	Duration      Millis  `json:"duration_ms"`
	Drained       Millis  `json:"drained_ms"` // time waited after mining for deliveries to finish
	Ordering      string  `json:"ordering"`   // the endpoints' delivery order, as stored
	FIFOKey       string  `json:"fifo_key,omitempty"`
	Signature     string  `json:"signature"` // the endpoints' signature scheme, as stored

	RedisPrefix string `json:"redis_prefix"`
	ChainID     uint64 `json:"chain_id"`
	AppID       string `json:"app_id"`
	GOMAXPROCS  int    `json:"gomaxprocs"`
	NumCPU      int    `json:"num_cpu"`

	// Throughput over the window.
	Mined             int64   `json:"mined"` // logs in blocks mined in the window
	MinedPerSec       float64 `json:"mined_per_sec"`
	IngestedInWindow  int64   `json:"ingested"` // stream entries whose id time is in the window
	EventsPerSec      float64 `json:"events_per_sec"`
	Window            Window  `json:"window"`
	Host              Host    `json:"host"`
	ShareMeasured     float64 `json:"share_measured"` // messages / (events * endpoints)
	DeliveredInWindow int64   `json:"delivered"`      // valid webhooks received in the window
	WebhooksPerSec    float64 `json:"webhooks_per_sec"`

	// Latency of events of blocks mined in the window.
	MinedToStream   Dist     `json:"mined_to_stream"`   // ms resolution (stream ids)
	StreamToQueued  HistDist `json:"stream_to_queued"`  // process's histogram, window only
	MinedToReceived Dist     `json:"mined_to_received"` // valid webhooks only
	// StreamToReceived is MinedToReceived less each block's mined -> first
	// stream entry: what process and deliver add (issue 13's latency).
	StreamToReceived Dist `json:"stream_to_received"`

	// Totals at the end of the run (warmup and drain included).
	EventsProcessedTotal int64            `json:"events_processed_total"`
	MessagesQueuedTotal  int64            `json:"messages_queued_total"`
	Received             int64            `json:"received_total"`
	Verified             int64            `json:"verified_total"`
	Rejected             int64            `json:"rejected_total"`
	Succeeded            int64            `json:"succeeded_total"`
	MessageStates        map[string]int64 `json:"message_states"`

	PeakRSSMB       float64 `json:"peak_rss_mb"`           // VmHWM at the end of the run
	Memory          Memory  `json:"memory"`                // what the runtime says the memory was
	DevnetRebuilt   uint64  `json:"devnet_rebuilt_blocks"` // blocks the devnet rebuilt because they were asked for after it compacted them
	CPUSecondsTotal float64 `json:"cpu_seconds_total"`
}

// WriteText prints the result for a person.
func (r Result) WriteText(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("load: %d endpoints, share %.4g (nominal %.4g, measured %.4g), target %.0f events/s as %d logs every %s, warmup %s, window %s",
		r.Endpoints, r.ShareTarget, r.ShareNominal, r.ShareMeasured, r.RateTarget, r.LogsPerBlock, r.BlockInterval, r.Warmup, r.Duration)
	order := r.Ordering
	if r.FIFOKey != "" {
		order += " by " + r.FIFOKey
	}
	p("endpoints: ordering %s, signature %s", order, r.Signature)
	p("run:  chain %d, redis prefix %s, app %s, GOMAXPROCS %d of %d CPUs; drained %s after mining", r.ChainID, r.RedisPrefix, r.AppID, r.GOMAXPROCS, r.NumCPU, r.Drained)
	p("")
	p("throughput (window)")
	p("  mined                 %10.0f events/s  (%d)", r.MinedPerSec, r.Mined)
	p("  ingested into stream  %10.0f events/s  (%d)", r.EventsPerSec, r.IngestedInWindow)
	p("  processed             %10.0f events/s  (%d)", r.Window.ProcessEventsPerSec, r.Window.Events)
	p("  messages queued       %10.0f msgs/s    (%d)", r.Window.MessagesPerSec, r.Window.Messages)
	p("  webhooks delivered    %10.0f /s        (%d valid, 2xx)", r.WebhooksPerSec, r.DeliveredInWindow)
	p("")
	p("latency, events of blocks mined in the window (ms)        n       p50       p95       p99       max")
	dist := func(name string, d Dist) {
		extra := ""
		if d.Missing > 0 {
			extra = fmt.Sprintf("  (%d never arrived)", d.Missing)
		}
		p("  %-40s %10d %9.1f %9.1f %9.1f %9.1f%s", name, d.N, d.P50, d.P95, d.P99, d.Max, extra)
	}
	dist("block mined -> stream entry", r.MinedToStream)
	h := r.StreamToQueued
	p("  %-40s %10d %9s %9s %9s %9s", "stream entry -> queued (histogram)", h.N, le(h.P50), le(h.P95), le(h.P99), "")
	dist("block mined -> webhook received", r.MinedToReceived)
	dist("stream entry -> webhook received", r.StreamToReceived)
	if len(h.Buckets) > 0 {
		var parts []string
		for _, b := range h.Buckets {
			parts = append(parts, fmt.Sprintf("<=%gms %.1f%%", b.LEms, 100*b.Share))
		}
		p("  stream entry -> queued, cumulative: %s", strings.Join(parts, ", "))
	}
	p("")
	states := make([]string, 0, len(r.MessageStates))
	for s, n := range r.MessageStates {
		states = append(states, fmt.Sprintf("%s %d", s, n))
	}
	sort.Strings(states)
	p("totals: %d messages queued; receiver got %d webhooks, %d verified, %d rejected; messages by state: %s",
		r.MessagesQueuedTotal, r.Received, r.Verified, r.Rejected, strings.Join(states, ", "))
	p("machine in the window: %.0f%% of all CPUs busy; redis-server %.2f cores, postgres (all its users) %.2f cores",
		100*r.Host.MachineBusy, r.Host.RedisCores, r.Host.PostgresCores)
	p("process: peak RSS %.1f MB (VmHWM); CPU %.1f s in the window (%.2f cores), %.1f s in all; devnet rebuilt %d compacted blocks",
		r.PeakRSSMB, r.Window.CPUSeconds, r.Window.CPUCores, r.CPUSecondsTotal, r.DevnetRebuilt)
	m, a := r.Memory, r.Memory.AtPeak
	if m.Samples > 0 {
		p("memory (MB, sampled every %s): highest RSS %.1f in the %s: heap objects %.1f (live at last GC %.1f, GC goal %.1f), heap spare %.1f, stacks %.1f (%d goroutines), runtime other %.1f",
			memSampleEvery, m.PeakRSSMB, m.PeakPhase, a.HeapObjectMB, a.HeapLiveMB, a.HeapGoalMB, a.HeapSpareMB, a.StacksMB, a.Goroutines, a.OtherMB)
		p("        peaks over the run: live heap %.1f, GC goal %.1f, stacks %.1f, goroutines %d",
			m.PeakLiveHeapMB, m.PeakHeapGoalMB, m.PeakStacksMB, m.PeakGoroutines)
	}
}

func le(ms float64) string {
	if ms < 0 {
		return ">last"
	}
	return fmt.Sprintf("<=%g", ms)
}
