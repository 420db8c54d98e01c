package bench

import (
	"context"
	"runtime/metrics"
	"sync"
	"time"
)

// Memory explains the peak RSS: the Go runtime's own figures sampled every
// memSampleEvery during the run, their peaks, and what they were at the
// sample with the highest RSS. All in MB (2^20 bytes).
type Memory struct {
	Samples        int     `json:"samples"`
	PeakRSSMB      float64 `json:"peak_rss_sampled_mb"` // highest VmRSS seen by the sampler (VmHWM is the exact peak)
	PeakPhase      string  `json:"peak_phase"`          // start, warmup, window, drain or end
	PeakLiveHeapMB float64 `json:"peak_live_heap_mb"`   // heap marked live by a GC
	PeakHeapGoalMB float64 `json:"peak_heap_goal_mb"`   // heap size the GC let the heap reach
	PeakStacksMB   float64 `json:"peak_stacks_mb"`      // goroutine stacks
	PeakGoroutines int64   `json:"peak_goroutines"`
	// At the sample with the highest RSS.
	AtPeak MemSample `json:"at_peak"`
}

// MemSample is one reading of the runtime's memory classes.
type MemSample struct {
	RSSMB        float64 `json:"rss_mb"`
	HeapObjectMB float64 `json:"heap_objects_mb"` // live and not yet swept dead objects
	HeapSpareMB  float64 `json:"heap_spare_mb"`   // heap mapped but holding no object: fragments and free spans not yet returned to the OS
	HeapLiveMB   float64 `json:"heap_live_mb"`
	HeapGoalMB   float64 `json:"heap_goal_mb"`
	StacksMB     float64 `json:"stacks_mb"`
	OtherMB      float64 `json:"runtime_other_mb"` // metadata, GC and profiling buffers, fragments
	Goroutines   int64   `json:"goroutines"`
}

const memSampleEvery = 250 * time.Millisecond

var memMetricNames = []string{
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/gc/heap/live:bytes",
	"/gc/heap/goal:bytes",
	"/memory/classes/heap/stacks:bytes",
	"/memory/classes/os-stacks:bytes",
	"/memory/classes/metadata/other:bytes",
	"/memory/classes/metadata/mspan/inuse:bytes",
	"/memory/classes/metadata/mcache/inuse:bytes",
	"/memory/classes/profiling/buckets:bytes",
	"/memory/classes/other:bytes",
	"/sched/goroutines:goroutines",
}

// memSampler records the runtime's memory figures until stopped.
type memSampler struct {
	mu    sync.Mutex
	phase string
	m     Memory
	done  chan struct{}
	stop  context.CancelFunc
}

func startMemSampler() *memSampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &memSampler{phase: "start", done: make(chan struct{}), stop: cancel}
	go func() {
		defer close(s.done)
		samples := make([]metrics.Sample, len(memMetricNames))
		for i, n := range memMetricNames {
			samples[i].Name = n
		}
		t := time.NewTicker(memSampleEvery)
		defer t.Stop()
		for {
			s.sample(samples)
			select {
			case <-ctx.Done():
				s.sample(samples)
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *memSampler) setPhase(p string) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

func (s *memSampler) sample(samples []metrics.Sample) {
	metrics.Read(samples)
	v := func(i int) float64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return float64(samples[i].Value.Uint64()) / (1 << 20)
	}
	ms := MemSample{
		RSSMB:        procStatusKB("VmRSS") / 1024,
		HeapObjectMB: v(0),
		HeapSpareMB:  v(1) + v(2),
		HeapLiveMB:   v(3),
		HeapGoalMB:   v(4),
		StacksMB:     v(5) + v(6),
		OtherMB:      v(7) + v(8) + v(9) + v(10) + v(11),
	}
	if samples[12].Value.Kind() == metrics.KindUint64 {
		ms.Goroutines = int64(samples[12].Value.Uint64())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &s.m
	m.Samples++
	if ms.RSSMB > m.PeakRSSMB {
		m.PeakRSSMB, m.PeakPhase, m.AtPeak = ms.RSSMB, s.phase, ms
	}
	m.PeakLiveHeapMB = max(m.PeakLiveHeapMB, ms.HeapLiveMB)
	m.PeakHeapGoalMB = max(m.PeakHeapGoalMB, ms.HeapGoalMB)
	m.PeakStacksMB = max(m.PeakStacksMB, ms.StacksMB)
	m.PeakGoroutines = max(m.PeakGoroutines, ms.Goroutines)
}

// finish stops sampling and returns what was seen.
func (s *memSampler) finish() Memory {
	s.stop()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m
}
