package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Delivery configures the deliver module (owned by modules/deliver).
type Delivery struct {
	// RetrySchedule is the delay before each attempt after the first failure
	// (ETHHOOK_DELIVERY_RETRY_SCHEDULE=0s,5s,5m,30m,2h,5h,10h,10h).
	RetrySchedule []string `mapstructure:"retry_schedule"`
	// AllowCIDRs lets webhooks reach otherwise refused private ranges
	// (ETHHOOK_DELIVERY_ALLOW_CIDRS=10.0.0.0/8,fd00::/8), or exactly one
	// address and port (127.0.0.1:9000, [::1]:9000).
	AllowCIDRs     []string      `mapstructure:"allow_cidrs"`
	ConnectTimeout time.Duration `mapstructure:"connect_timeout"`
	Timeout        time.Duration `mapstructure:"timeout"`
	// ConcurrencyPerEndpoint caps in-flight requests to one endpoint.
	ConcurrencyPerEndpoint int `mapstructure:"concurrency_per_endpoint"`
	// DisableAfter disables an endpoint that has failed without a success for this long.
	DisableAfter time.Duration `mapstructure:"disable_after"`
	// SecretOverlap is how long the old secret still signs after a rotation.
	SecretOverlap time.Duration `mapstructure:"secret_overlap"`
	// MaxRetryAfter caps how long a receiver's Retry-After may postpone a retry.
	MaxRetryAfter time.Duration `mapstructure:"max_retry_after"`
	// MaxInFlight caps in-flight requests of one deliver process (all
	// endpoints). Each slot ends up holding a kept-alive connection (about
	// 25 KB: buffers and two goroutines; more with TLS), so it is also a
	// memory cap. The slots needed are about webhooks/s times the
	// endpoints' response time: 256 keeps up with 2,500/s at 100 ms
	// (ETHHOOK_DELIVERY_MAX_IN_FLIGHT).
	MaxInFlight int `mapstructure:"max_in_flight"`
	// QueuePerEndpoint caps messages one process holds in memory per endpoint
	// (queued and in flight); the rest stay pending in Postgres and the
	// endpoint's lane pulls them as it makes room. Each held message keeps its
	// payload in memory; 100 is ten times the default concurrency per
	// endpoint, enough to keep every slot busy between two pulls.
	QueuePerEndpoint int `mapstructure:"queue_per_endpoint"`
	// MaxHeld caps the messages one process holds in all (queued, in
	// flight, and sent but not yet recorded in Postgres). At the cap the
	// process stops reading delivery jobs: they wait in the Redis stream
	// (and the messages in Postgres) until it has room, so a backlog costs
	// no memory (ETHHOOK_DELIVERY_MAX_HELD). Endpoints that cannot send
	// (breaker open) keep their queues, so it must leave room beside them:
	// 6400 is 64 full queues of the default QueuePerEndpoint.
	MaxHeld int `mapstructure:"max_held"`
	// MaxHeldMiB caps the payload bytes of the messages one process holds,
	// in MiB, the same way (ETHHOOK_DELIVERY_MAX_HELD_MIB).
	MaxHeldMiB int `mapstructure:"max_held_mib"`
	// LeaseTimeout is how long a claimed message belongs to the process that
	// claimed it without a heartbeat; after that the sweeper re-offers it.
	LeaseTimeout time.Duration `mapstructure:"lease_timeout"`
	// SweepInterval is how often Postgres is swept for messages no live
	// process holds (crash, lost job); it is not on the delivery path.
	SweepInterval time.Duration `mapstructure:"sweep_interval"`
	// BreakerThreshold consecutive failures open an endpoint's circuit breaker;
	// BreakerCooldown is the first wait before a probe (doubling up to 5 min).
	BreakerThreshold int           `mapstructure:"breaker_threshold"`
	BreakerCooldown  time.Duration `mapstructure:"breaker_cooldown"`
	// MetricsTopEndpoints is how many endpoints, those with the largest
	// backlog, get per-endpoint metrics (queue depth, oldest pending age,
	// in flight, attempts by outcome), so label cardinality stays bounded
	// (ETHHOOK_DELIVERY_METRICS_TOP_ENDPOINTS; 0 = none but
	// MetricsEndpoints).
	MetricsTopEndpoints int `mapstructure:"metrics_top_endpoints"`
	// MetricsEndpoints are endpoint ids that always get per-endpoint
	// metrics, backlog or not (ETHHOOK_DELIVERY_METRICS_ENDPOINTS=ep_..,ep_..).
	MetricsEndpoints []string `mapstructure:"metrics_endpoints"`
	// MetricsInterval is how often the queue gauges are read from Postgres
	// (ETHHOOK_DELIVERY_METRICS_INTERVAL).
	MetricsInterval time.Duration `mapstructure:"metrics_interval"`
}

// Bounds of the per-endpoint metrics (their label cardinality).
const (
	MaxMetricsTopEndpoints = 1000
	MaxMetricsEndpoints    = 1000
)

// DefaultDelivery holds the delivery defaults.
func DefaultDelivery() Delivery {
	return Delivery{
		RetrySchedule:          []string{"0s", "5s", "5m", "30m", "2h", "5h", "10h", "10h"},
		ConnectTimeout:         5 * time.Second,
		Timeout:                15 * time.Second,
		ConcurrencyPerEndpoint: 10,
		DisableAfter:           5 * 24 * time.Hour,
		SecretOverlap:          24 * time.Hour,
		MaxRetryAfter:          time.Hour,
		MaxInFlight:            256,
		QueuePerEndpoint:       100,
		MaxHeld:                6400,
		MaxHeldMiB:             16,
		LeaseTimeout:           60 * time.Second,
		SweepInterval:          10 * time.Second,
		BreakerThreshold:       10,
		BreakerCooldown:        10 * time.Second,
		MetricsTopEndpoints:    20,
		MetricsInterval:        10 * time.Second,
	}
}

// Schedule parses RetrySchedule.
func (c Delivery) Schedule() ([]time.Duration, error) {
	return ParseSchedule(c.RetrySchedule)
}

// ParseSchedule parses a list of retry delays ("0s", "5s", "5m", ...).
func ParseSchedule(items []string) ([]time.Duration, error) {
	if len(items) == 0 {
		return nil, fmt.Errorf("needs at least one delay")
	}
	out := make([]time.Duration, 0, len(items))
	for i, s := range items {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("item %d %q is not a non-negative duration like 5s or 2h", i+1, s)
		}
		out = append(out, d)
	}
	return out, nil
}

// AllowedPrefixes parses the CIDR entries of AllowCIDRs.
func (c Delivery) AllowedPrefixes() ([]netip.Prefix, error) {
	prefixes, _, err := c.Allowed()
	return prefixes, err
}

// Allowed parses AllowCIDRs into ranges (10.0.0.0/8) and single
// address-and-port entries (127.0.0.1:9000).
func (c Delivery) Allowed() ([]netip.Prefix, []netip.AddrPort, error) {
	var prefixes []netip.Prefix
	var addrs []netip.AddrPort
	for _, s := range c.AllowCIDRs {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			prefixes = append(prefixes, p.Masked())
			continue
		}
		if ap, err := netip.ParseAddrPort(s); err == nil && ap.Port() != 0 {
			addrs = append(addrs, netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()))
			continue
		}
		return nil, nil, fmt.Errorf("%q is neither a CIDR like 10.0.0.0/8 nor an address and port like 127.0.0.1:9000", s)
	}
	return prefixes, addrs, nil
}

// Validate checks the delivery settings.
func (c Delivery) Validate() error {
	var errs []error
	if _, err := c.Schedule(); err != nil {
		errs = append(errs, fmt.Errorf("delivery.retry_schedule (ETHHOOK_DELIVERY_RETRY_SCHEDULE): %w", err))
	}
	if _, err := c.AllowedPrefixes(); err != nil {
		errs = append(errs, fmt.Errorf("delivery.allow_cidrs (ETHHOOK_DELIVERY_ALLOW_CIDRS): %w", err))
	}
	errs = append(errs,
		positive("delivery.connect_timeout", c.ConnectTimeout),
		positive("delivery.timeout", c.Timeout),
		atLeast("delivery.concurrency_per_endpoint", c.ConcurrencyPerEndpoint, 1),
		positive("delivery.disable_after", c.DisableAfter),
		failIf(c.SecretOverlap < 0, "delivery.secret_overlap: must not be negative"),
		atLeast("delivery.max_retry_after", c.MaxRetryAfter, time.Second),
		atLeast("delivery.max_in_flight", c.MaxInFlight, 1),
		atLeast("delivery.queue_per_endpoint", c.QueuePerEndpoint, 1),
		atLeast("delivery.max_held (ETHHOOK_DELIVERY_MAX_HELD)", c.MaxHeld, 1),
		atLeast("delivery.max_held_mib (ETHHOOK_DELIVERY_MAX_HELD_MIB)", c.MaxHeldMiB, 1),
		failIf(c.LeaseTimeout < time.Second || c.LeaseTimeout <= c.Timeout,
			"delivery.lease_timeout: must be at least 1s and longer than delivery.timeout, got %s", c.LeaseTimeout),
		positive("delivery.sweep_interval", c.SweepInterval),
		atLeast("delivery.breaker_threshold", c.BreakerThreshold, 1),
		positive("delivery.breaker_cooldown", c.BreakerCooldown),
		within("delivery.metrics_top_endpoints (ETHHOOK_DELIVERY_METRICS_TOP_ENDPOINTS)", c.MetricsTopEndpoints, 0, MaxMetricsTopEndpoints),
		failIf(len(c.MetricsEndpoints) > MaxMetricsEndpoints,
			"delivery.metrics_endpoints (ETHHOOK_DELIVERY_METRICS_ENDPOINTS): at most %d endpoints, got %d", MaxMetricsEndpoints, len(c.MetricsEndpoints)),
	)
	for _, id := range c.MetricsEndpoints {
		if !strings.HasPrefix(id, "ep_") || len(id) > 64 {
			errs = append(errs, fmt.Errorf("delivery.metrics_endpoints (ETHHOOK_DELIVERY_METRICS_ENDPOINTS): %q is not an endpoint id (ep_...)", id))
			break
		}
	}
	errs = append(errs, atLeast("delivery.metrics_interval (ETHHOOK_DELIVERY_METRICS_INTERVAL)", c.MetricsInterval, 100*time.Millisecond))
	return errors.Join(errs...)
}
