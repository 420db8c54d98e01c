package deliver

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	attempts     *prometheus.CounterVec
	latency      prometheus.Histogram
	messages     *prometheus.GaugeVec
	scheduled    prometheus.Gauge
	held         prometheus.Gauge
	breakersOpen prometheus.Gauge
	disabled     prometheus.Gauge
	dropped      *prometheus.CounterVec
	ep           *endpointMetrics
	// What dashboards and alerts need beyond the gauges: the HTTP time of
	// each attempt, and counters of breakers opened and endpoints disabled
	// (a gauge's rise can hide between two scrapes; a counter's cannot).
	attemptTime    prometheus.Histogram
	breakersOpened prometheus.Counter
	disabledTotal  prometheus.Counter
	// rateLimited is the endpoints in a rate-limit backlog episode
	// (ratebacklog.go), fleet-wide: every process sets the same number.
	rateLimited prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		attempts: newCounterVec("attempts_total", "Delivery attempts by outcome (success, retry, dead) and status class (2xx..5xx, none).",
			"outcome", "status_class"),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ethhook_deliver_committed_to_success_seconds",
			Help:    "Time from a message's creation (commit) to its 2xx answer.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 4 * 3600, 12 * 3600, 48 * 3600},
		}),
		messages:     newGaugeVec("messages", "Messages not yet finished, by state (pending, delivering, failed), from Postgres.", "state"),
		scheduled:    newGauge("scheduled_retries", "Retries waiting in the Redis schedule."),
		held:         newGauge("held_messages", "Claimed messages this process holds: queued, in flight, or sent and not yet recorded (capped by delivery.max_held)."),
		breakersOpen: newGauge("breakers_open", "Endpoints whose circuit breaker is open in this process."),
		disabled:     newGauge("endpoints_disabled", "Disabled endpoints, from Postgres."),
		dropped: newCounterVec("results_dropped_total",
			"Attempt results not recorded, by reason (message_gone: the message was deleted with its endpoint or app while the attempt was in flight).", "reason"),
		ep: newEndpointMetrics(),
		attemptTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ethhook_deliver_attempt_duration_seconds",
			Help:    "HTTP time of each delivery attempt (connect to last byte of the kept response), whatever its outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		breakersOpened: newCounter("breakers_opened_total", "Circuit breakers this process opened (consecutive failures of one endpoint)."),
		disabledTotal:  newCounter("endpoints_disabled_total", "Endpoints this process disabled (failing for delivery.disable_after, or a final answer that disables)."),
		rateLimited:    newGauge("rate_limited_endpoints", "Endpoints whose rate limit holds a backlog back (an endpoint.rate_limited episode under way), from Redis: the same in every deliver process."),
	}
	for _, c := range append([]prometheus.Collector{m.attempts, m.latency, m.messages, m.scheduled, m.held, m.breakersOpen, m.disabled, m.dropped,
		m.attemptTime, m.breakersOpened, m.disabledTotal, m.rateLimited}, m.ep.collectors()...) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// The deliver series, named ethhook_deliver_<name>.

func newGauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: "ethhook_deliver_" + name, Help: help})
}

func newCounter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "ethhook_deliver_" + name, Help: help})
}

func newGaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ethhook_deliver_" + name, Help: help}, labels)
}

func newCounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ethhook_deliver_" + name, Help: help}, labels)
}

func statusClass(code int) string {
	switch {
	case code >= 200 && code < 300:
		return "2xx"
	case code >= 300 && code < 400:
		return "3xx"
	case code >= 400 && code < 500:
		return "4xx"
	case code >= 500 && code < 600:
		return "5xx"
	}
	return "none"
}
