package process

import "github.com/prometheus/client_golang/prometheus"

// extraMetrics are the metrics of histories and dead letters.
type extraMetrics struct {
	historyEvents prometheus.Counter     // history events made messages or holds
	deadLetters   *prometheus.CounterVec // chain
}

func newExtraMetrics(reg prometheus.Registerer) (*extraMetrics, error) {
	m := &extraMetrics{
		historyEvents: prometheus.NewCounter(prometheus.CounterOpts{Name: "ethhook_process_history_events_total",
			Help: "History events (endpoints created with from_block) made messages or held."}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ethhook_process_dead_letters_total",
			Help: "Stream entries moved to the dead-letter stream after failing process.poison_tries times."}, []string{"chain"}),
	}
	for _, c := range []prometheus.Collector{m.historyEvents, m.deadLetters} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
