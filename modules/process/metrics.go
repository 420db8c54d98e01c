package process

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	eventsIn     *prometheus.CounterVec   // chain, chain_id, type
	matches      *prometheus.CounterVec   // chain, chain_id
	messages     *prometheus.CounterVec   // type
	decodeErrors *prometheus.CounterVec   // chain, chain_id
	badEntries   *prometheus.CounterVec   // chain, chain_id
	held         *prometheus.GaugeVec     // chain, chain_id: confirmation/batch backlog
	latency      *prometheus.HistogramVec // chain, chain_id
	endpoints    prometheus.Gauge
	heldBack     prometheus.Gauge
}

// chainLabels are the values of the chain and chain_id labels for a chain
// id: its configured name (the id again for a chain process was not given)
// and the decimal id, the same two labels ingest uses, so queries join.
func (m *Module) chainLabels(id uint64) (name, cid string) {
	cid = strconv.FormatUint(id, 10)
	for _, c := range m.chains {
		if c.ID == id {
			return c.Name, cid
		}
	}
	return cid, cid
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		eventsIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ethhook_process_events_total",
			Help: "Stream entries processed, by chain and type (log, log.removed)."}, []string{"chain", "chain_id", "type"}),
		matches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ethhook_process_matches_total",
			Help: "Event-endpoint matches."}, []string{"chain", "chain_id"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ethhook_process_messages_total",
			Help: "Messages created, by type (log, log.removed, batch)."}, []string{"type"}),
		decodeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ethhook_process_decode_errors_total",
			Help: "Matched logs delivered raw because they could not be decoded."}, []string{"chain", "chain_id"}),
		badEntries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ethhook_process_bad_entries_total",
			Help: "Stream entries that could not be parsed (acknowledged and skipped)."}, []string{"chain", "chain_id"}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ethhook_process_held_events",
			Help: "Events waiting for confirmations or a batch, by chain."}, []string{"chain", "chain_id"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ethhook_process_queue_latency_seconds",
			Help:    "From stream entry (its id's time) to its messages committed and jobs queued.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"chain", "chain_id"}),
		endpoints: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ethhook_process_endpoints",
			Help: "Enabled endpoints in the in-memory index."}),
		heldBack: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ethhook_process_held_back",
			Help: "1 while no events are read because the delivery jobs backlog reached process.max_queued_jobs."}),
	}
	for _, c := range []prometheus.Collector{m.eventsIn, m.matches, m.messages, m.decodeErrors, m.badEntries, m.held, m.latency, m.endpoints, m.heldBack} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
