package message

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ethhook/ethhook/hook"
)

// HealthSample bounds the attempts one health window reads: the newest
// HealthSample attempts of the window (an endpoint at 100/s makes 8.6
// million a day; percentiles over all of them would cost seconds).
const HealthSample = 100_000

// HealthWindows are the windows of an endpoint's health, newest first.
var HealthWindows = []struct {
	Name string
	Span time.Duration
}{{"1h", time.Hour}, {"24h", 24 * time.Hour}}

// Health is an endpoint's delivery health over one window, from its
// attempts in delivery_history.
type Health struct {
	Window      string  `json:"window"`       // "1h" or "24h"
	Attempts    int64   `json:"attempts"`     // attempts read (at most HealthSample)
	Succeeded   int64   `json:"succeeded"`    // answered 2xx
	SuccessRate float64 `json:"success_rate"` // succeeded / attempts, 0..1 (1 with no attempts)
	P50MS       int64   `json:"p50_ms"`       // median attempt latency
	P99MS       int64   `json:"p99_ms"`
	// Sampled is true when the window held more than HealthSample attempts
	// and the figures are of the newest HealthSample.
	Sampled   bool       `json:"sampled"`
	LastError *LastError `json:"last_error,omitempty"` // the newest failed attempt of the window
}

// LastError is a failed attempt.
type LastError struct {
	At         time.Time `json:"at"`
	MessageID  string    `json:"message_id"`
	StatusCode *int      `json:"status_code"`
	ErrorClass string    `json:"error_class"`
	Error      string    `json:"error"`
}

// Health returns an endpoint's health over the last hour and day. Every
// query filters delivery_history on created_at, so a table partitioned by
// time reads only the partitions of the window, through
// (endpoint_id, created_at).
func (s *Service) Health(ctx context.Context, sc hook.Scope, appID, endpointID string, now time.Time) ([]Health, error) {
	var q query
	q.scope(sc, "e.app_id")
	q.where("e.app_id = %s", appID)
	q.where("e.id = %s", endpointID)
	var one int
	err := s.pool.QueryRow(ctx, "SELECT 1 FROM endpoints e WHERE "+q.sql(), q.args...).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, hook.NotFound("endpoint", endpointID)
	}
	if err != nil {
		return nil, fmt.Errorf("health of endpoint %s: %w", endpointID, err)
	}
	out := make([]Health, 0, len(HealthWindows))
	for _, w := range HealthWindows {
		h := Health{Window: w.Name, SuccessRate: 1}
		since := now.Add(-w.Span)
		var p50, p99 *float64
		err := s.pool.QueryRow(ctx, `
			WITH a AS (
				SELECT status_code, latency_ms FROM delivery_history
				WHERE endpoint_id = $1 AND created_at >= $2 AND created_at <= $3
				ORDER BY created_at DESC LIMIT $4
			)
			SELECT count(*), count(*) FILTER (WHERE status_code BETWEEN 200 AND 299),
			       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms),
			       percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms)
			FROM a`, endpointID, since, now, HealthSample+1).Scan(&h.Attempts, &h.Succeeded, &p50, &p99)
		if err != nil {
			return nil, fmt.Errorf("health of endpoint %s over %s: %w", endpointID, w.Name, err)
		}
		if h.Attempts > HealthSample {
			h.Attempts, h.Sampled = HealthSample, true
		}
		if h.Attempts > 0 {
			h.SuccessRate = float64(h.Succeeded) / float64(h.Attempts)
		}
		if p50 != nil {
			h.P50MS, h.P99MS = int64(*p50+0.5), int64(*p99+0.5)
		}
		var le LastError
		err = s.pool.QueryRow(ctx, `SELECT created_at, message_id, status_code, error_class, error FROM delivery_history
			WHERE endpoint_id = $1 AND created_at >= $2 AND created_at <= $3 AND (status_code IS NULL OR status_code NOT BETWEEN 200 AND 299)
			ORDER BY created_at DESC LIMIT 1`, endpointID, since, now).Scan(&le.At, &le.MessageID, &le.StatusCode, &le.ErrorClass, &le.Error)
		switch {
		case err == nil:
			h.LastError = &le
		case !errors.Is(err, pgx.ErrNoRows):
			return nil, fmt.Errorf("last error of endpoint %s: %w", endpointID, err)
		}
		out = append(out, h)
	}
	return out, nil
}
