package admin

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ethhook/ethhook/tenant"
)

type metrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	rateLimited prometheus.Counter
	released    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, store *tenant.Store) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ethhook_api_requests_total", Help: "Admin API requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ethhook_api_request_duration_seconds", Help: "Admin API request latency.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"method", "route"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ethhook_api_rate_limited_total", Help: "Admin API requests refused with 429.",
		}),
		released: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ethhook_quota_released_messages_total", Help: "Messages released from quota_exceeded back to pending.",
		}),
	}
	held := countGauge("ethhook_quota_held_messages", "Messages held in state quota_exceeded.", store.HeldMessages)
	over := countGauge("ethhook_quota_exceeded_applications", "Applications at or over their monthly delivery quota.", store.AppsOverQuota)
	near := countGauge("ethhook_quota_near_applications", "Applications at 80% or more of their monthly delivery quota and still under it.", store.AppsNearQuota)
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.rateLimited, m.released, held, over, near} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("admin: register metrics: %w", err)
		}
	}
	return m, nil
}

// countGauge is a gauge read from Postgres at each scrape: count's answer,
// or -1 when it fails (or takes over 5 s).
func countGauge(name, help string, count func(context.Context) (int64, error)) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := count(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
}

// metricMethod is the method label of a request: the client chooses the
// method, so any method outside the known set counts as "other" and the
// label has at most ten values whatever clients send.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}
