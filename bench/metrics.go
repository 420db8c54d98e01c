package bench

import (
	"bufio"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names of process read by the run.
const (
	metricQueueLatency = "ethhook_process_queue_latency_seconds" // stream entry (its id's time) -> messages committed and jobs queued
	metricMessages     = "ethhook_process_messages_total"
	metricEvents       = "ethhook_process_events_total"
)

// snapshot is the process's counters at one moment.
type snapshot struct {
	at        time.Time
	cpu       time.Duration
	hwmKB     float64
	messages  float64
	events    float64
	queueHist hist
	host      hostCPU
}

// hist is a cumulative histogram summed over labels.
type hist struct {
	bounds []float64 // upper bounds, seconds
	counts []uint64  // cumulative
	total  uint64
}

func takeSnapshot(g prometheus.Gatherer) snapshot {
	return snapshot{
		at: time.Now(), cpu: cpuTime(), hwmKB: procStatusKB("VmHWM"),
		messages: counterSum(g, metricMessages), events: counterSum(g, metricEvents),
		queueHist: histogramSum(g, metricQueueLatency), host: readHostCPU(),
	}
}

func counterSum(g prometheus.Gatherer, name string) float64 {
	mfs, err := g.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func histogramSum(g prometheus.Gatherer, name string) hist {
	var h hist
	mfs, err := g.Gather()
	if err != nil {
		return h
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			hm := m.GetHistogram()
			if h.bounds == nil {
				for _, b := range hm.GetBucket() {
					h.bounds = append(h.bounds, b.GetUpperBound())
				}
				h.counts = make([]uint64, len(h.bounds))
			}
			for i, b := range hm.GetBucket() {
				if i < len(h.counts) {
					h.counts[i] += b.GetCumulativeCount()
				}
			}
			h.total += hm.GetSampleCount()
		}
	}
	return h
}

// histQuantiles gives the percentiles of the observations made between two
// snapshots of a histogram. A bucketed histogram only bounds a percentile:
// each one is the upper bound of the bucket that holds it (-1 when it is
// beyond the last bucket).
func histQuantiles(a, b hist) HistDist {
	d := HistDist{N: int64(b.total - a.total)}
	if d.N == 0 || len(b.bounds) == 0 {
		return d
	}
	counts := make([]uint64, len(b.counts))
	for i := range counts {
		counts[i] = b.counts[i]
		if i < len(a.counts) {
			counts[i] -= a.counts[i]
		}
	}
	q := func(p float64) float64 {
		need := uint64(math.Ceil(p * float64(d.N)))
		for i, c := range counts {
			if c >= need {
				return b.bounds[i] * 1000
			}
		}
		return -1 // beyond the last bucket
	}
	d.P50, d.P95, d.P99 = q(.50), q(.95), q(.99)
	for i, ub := range b.bounds {
		d.Buckets = append(d.Buckets, Bucket{LEms: ub * 1000, Share: float64(counts[i]) / float64(d.N)})
	}
	return d
}

// procStatusKB reads a "kB" field of /proc/self/status (0 when unavailable).
func procStatusKB(field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, field+":") {
			continue
		}
		fs := strings.Fields(strings.TrimPrefix(line, field+":"))
		if len(fs) == 0 {
			return 0
		}
		v, _ := strconv.ParseFloat(fs[0], 64)
		return v
	}
	return 0
}

// windowFigures are the process counters and CPU over the measured window.
func windowFigures(a, b snapshot, seconds float64) Window {
	w := Window{
		Events:     int64(b.events - a.events),
		Messages:   int64(b.messages - a.messages),
		CPUSeconds: (b.cpu - a.cpu).Seconds(),
	}
	w.MessagesPerSec = float64(w.Messages) / seconds
	w.ProcessEventsPerSec = float64(w.Events) / seconds
	w.CPUCores = w.CPUSeconds / b.at.Sub(a.at).Seconds()
	return w
}

// summarize sorts ms samples into percentiles.
func summarize(ms []float64) Dist {
	d := Dist{N: int64(len(ms))}
	if len(ms) == 0 {
		return d
	}
	sort.Float64s(ms)
	q := func(p float64) float64 {
		i := int(p*float64(len(ms))+0.999999) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(ms) {
			i = len(ms) - 1
		}
		return ms[i]
	}
	d.P50, d.P95, d.P99, d.Max = q(.50), q(.95), q(.99), ms[len(ms)-1]
	return d
}

// cpuTime is user+system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
