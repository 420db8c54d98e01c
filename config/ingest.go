package config

import (
	"errors"
	"fmt"
	"time"
)

// Ingest configures the ingest module (owned by modules/ingest).
type Ingest struct {
	// StreamMaxLen trims each chain's events stream (approximate MAXLEN).
	StreamMaxLen int64 `mapstructure:"stream_max_len"`
	// LeaseTTL is how long a chain's writer lease lives without renewal;
	// a standby takes over at most this long after the writer dies.
	LeaseTTL time.Duration `mapstructure:"lease_ttl"`
	// CallTimeout bounds one JSON-RPC call.
	CallTimeout time.Duration `mapstructure:"call_timeout"`
	// MaxLogRange is the default ranged eth_getLogs span for backfill.
	MaxLogRange uint64 `mapstructure:"max_log_range"`
}

// DefaultIngest holds the ingest defaults.
func DefaultIngest() Ingest {
	return Ingest{StreamMaxLen: 1_000_000, LeaseTTL: 3 * time.Second, CallTimeout: 10 * time.Second, MaxLogRange: 1000}
}

// Validate checks the ingest settings.
func (c Ingest) Validate() error {
	var errs []error
	if c.StreamMaxLen < 1000 {
		errs = append(errs, fmt.Errorf("ingest.stream_max_len: must be at least 1000, got %d", c.StreamMaxLen))
	}
	if c.LeaseTTL < 500*time.Millisecond {
		errs = append(errs, fmt.Errorf("ingest.lease_ttl: must be at least 500ms, got %s", c.LeaseTTL))
	}
	if c.CallTimeout <= 0 {
		errs = append(errs, fmt.Errorf("ingest.call_timeout: must be positive, got %s", c.CallTimeout))
	}
	if c.MaxLogRange < 1 {
		errs = append(errs, fmt.Errorf("ingest.max_log_range: must be at least 1"))
	}
	return errors.Join(errs...)
}
