package config

import (
	"errors"
	"fmt"
	"time"
)

// Process configures the process module (owned by modules/process).
type Process struct {
	// ClaimIdle is how long an entry may sit unacknowledged with a consumer
	// before another process reclaims it (XAUTOCLAIM).
	ClaimIdle time.Duration `mapstructure:"claim_idle"`
	// ReadCount is how many stream entries one read takes.
	ReadCount int64 `mapstructure:"read_count"`
}

// DefaultProcess holds the process defaults.
func DefaultProcess() Process {
	return Process{ClaimIdle: 30 * time.Second, ReadCount: 500}
}

// Validate checks the process settings.
func (c Process) Validate() error {
	var errs []error
	if c.ClaimIdle < time.Second {
		errs = append(errs, fmt.Errorf("process.claim_idle: must be at least 1s, got %s", c.ClaimIdle))
	}
	if c.ReadCount < 1 || c.ReadCount > 10000 {
		errs = append(errs, fmt.Errorf("process.read_count: must be 1..10000, got %d", c.ReadCount))
	}
	return errors.Join(errs...)
}
