package deliver

import (
	"context"
	"sort"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ethhook/ethhook/internal/sleep"
)

// Per-endpoint metrics, for an operator looking at one hot endpoint: its
// queue depth by state and oldest waiting message (from Postgres, all
// processes), its requests in flight here and its attempts by outcome. Only
// the MetricsTopEndpoints endpoints with the largest backlog, plus the
// MetricsEndpoints named in config, have series: the set is chosen anew at
// every refresh and the series of endpoints that left it are deleted, so
// there are at most (top + named) endpoints' worth of series.
type endpointMetrics struct {
	depth    *prometheus.GaugeVec   // endpoint, state
	oldest   *prometheus.GaugeVec   // endpoint
	inFlight *prometheus.GaugeVec   // endpoint
	attempts *prometheus.CounterVec // endpoint, outcome

	tracked atomic.Pointer[map[string]bool] // endpoints with series now
}

func newEndpointMetrics() *endpointMetrics {
	em := &endpointMetrics{
		depth: newGaugeVec("endpoint_messages",
			"Messages of an endpoint not yet finished, by state (pending, failed: waiting for a retry, delivering), from Postgres; only the endpoints with the largest backlog (delivery.metrics_top_endpoints) and those named in delivery.metrics_endpoints.", "endpoint", "state"),
		oldest: newGaugeVec("endpoint_oldest_waiting_seconds",
			"Age of an endpoint's oldest message waiting (pending or failed), 0 when none; same endpoints as ethhook_deliver_endpoint_messages.", "endpoint"),
		inFlight: newGaugeVec("endpoint_in_flight",
			"Requests to an endpoint in flight in this process; same endpoints as ethhook_deliver_endpoint_messages.", "endpoint"),
		attempts: newCounterVec("endpoint_attempts_total",
			"Delivery attempts to an endpoint by outcome (success, retry, dead), counted while the endpoint is among those with per-endpoint metrics (a series restarts from 0 when it comes back).", "endpoint", "outcome"),
	}
	em.tracked.Store(&map[string]bool{})
	return em
}

func (em *endpointMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{em.depth, em.oldest, em.inFlight, em.attempts}
}

// attempt counts an attempt of a tracked endpoint (a map lookup otherwise).
func (em *endpointMetrics) attempt(endpointID, outcome string) {
	if (*em.tracked.Load())[endpointID] {
		em.attempts.WithLabelValues(endpointID, outcome).Inc()
	}
}

// endpointBacklog is one endpoint's unfinished messages.
type endpointBacklog struct {
	id                          string
	pending, failed, delivering int64
	oldest                      float64 // seconds
}

func (b endpointBacklog) waiting() int64 { return b.pending + b.failed }

// metricsLoop refreshes the queue gauges every MetricsInterval.
func (m *Module) metricsLoop(ctx context.Context) error {
	for {
		m.refreshGauges(ctx, m.refreshEndpointMetrics(ctx))
		if !sleep.For(ctx, m.cfg.MetricsInterval) {
			return ctx.Err()
		}
	}
}

// refreshEndpointMetrics picks the endpoints to track (largest backlog
// first, then the named ones) and sets their gauges, and returns the
// unfinished messages of all endpoints by state (nil when per-endpoint
// metrics are off or the query failed): both come from one scan of the
// waiting states (the message_states_waiting partial index), which takes
// the size of the backlog, so it is made once per refresh, not once for
// each set of gauges. At most top + named + 1 rows come back.
func (m *Module) refreshEndpointMetrics(ctx context.Context) map[string]int64 {
	top, named := m.cfg.MetricsTopEndpoints, m.cfg.MetricsEndpoints
	if top == 0 && len(named) == 0 {
		return nil
	}
	// The totals row has endpoint_id NULL.
	rows, err := m.pool.Query(ctx, `
		WITH b AS (
		    SELECT endpoint_id,
		           count(*) FILTER (WHERE state = 'pending') AS pending,
		           count(*) FILTER (WHERE state = 'failed') AS failed,
		           count(*) FILTER (WHERE state = 'delivering') AS delivering,
		           COALESCE(EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE state IN ('pending', 'failed'))), 0)::float8 AS oldest
		    FROM message_states WHERE state IN ('pending', 'delivering', 'failed')
		    GROUP BY endpoint_id
		)
		(SELECT NULL::text, COALESCE(sum(pending), 0)::int8, COALESCE(sum(failed), 0)::int8,
		        COALESCE(sum(delivering), 0)::int8, 0::float8 FROM b)
		UNION ALL
		((SELECT * FROM b ORDER BY pending + failed DESC, oldest DESC LIMIT $1)
		 UNION
		 (SELECT * FROM b WHERE endpoint_id = ANY($2)))`, top, named)
	if err != nil {
		if ctx.Err() == nil {
			m.pgOut.Report("read per-endpoint metrics", err)
		}
		return nil
	}
	var list []endpointBacklog
	var totals map[string]int64
	for rows.Next() {
		var id *string
		var b endpointBacklog
		if err := rows.Scan(&id, &b.pending, &b.failed, &b.delivering, &b.oldest); err != nil {
			rows.Close()
			return nil
		}
		if id == nil {
			totals = map[string]int64{"pending": b.pending, "failed": b.failed, "delivering": b.delivering}
			continue
		}
		b.id = *id
		list = append(list, b)
	}
	rows.Close()
	if rows.Err() != nil {
		return nil
	}
	sort.Slice(list, func(i, j int) bool { return list[i].waiting() > list[j].waiting() })
	now := map[string]endpointBacklog{}
	for i, b := range list {
		if i < top {
			now[b.id] = b
		}
	}
	for _, id := range named {
		b := now[id]
		for _, l := range list {
			if l.id == id {
				b = l
			}
		}
		b.id = id // named endpoints have series even with nothing waiting
		now[id] = b
	}
	em := m.met.ep
	tracked := make(map[string]bool, len(now))
	for id := range now {
		tracked[id] = true
	}
	for id := range *em.tracked.Swap(&tracked) {
		if !tracked[id] {
			em.depth.DeletePartialMatch(prometheus.Labels{"endpoint": id})
			em.oldest.DeleteLabelValues(id)
			em.inFlight.DeleteLabelValues(id)
			em.attempts.DeletePartialMatch(prometheus.Labels{"endpoint": id})
		}
	}
	for id, b := range now {
		em.depth.WithLabelValues(id, "pending").Set(float64(b.pending))
		em.depth.WithLabelValues(id, "failed").Set(float64(b.failed))
		em.depth.WithLabelValues(id, "delivering").Set(float64(b.delivering))
		em.oldest.WithLabelValues(id).Set(b.oldest)
		em.inFlight.WithLabelValues(id).Set(float64(m.lanes.inFlight(id)))
	}
	return totals
}

// inFlight is the endpoint's requests in flight in this process.
func (ls *lanes) inFlight(id string) int {
	ls.mu.Lock()
	l := ls.by[id]
	ls.mu.Unlock()
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inflight
}
