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
	held := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ethhook_quota_held_messages", Help: "Messages held in state quota_exceeded.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := store.HeldMessages(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	over := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ethhook_quota_exceeded_applications", Help: "Applications at or over their monthly delivery quota.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := store.AppsOverQuota(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	near := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ethhook_quota_near_applications", Help: "Applications at 80% or more of their monthly delivery quota and still under it.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := store.AppsNearQuota(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.rateLimited, m.released, held, over, near} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("admin: register metrics: %w", err)
		}
	}
	return m, nil
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
