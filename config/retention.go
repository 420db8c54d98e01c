package config

import (
	"errors"
	"fmt"
	"time"
)

// Retention configures how long traffic tables keep their rows (owned by
// package retention). Rows go a whole day at a time: a day's partition is
// dropped once its newest possible row is older than the retention, so a row
// lives at least the retention and at most a day longer.
type Retention struct {
	// Messages is how long messages are kept (ETHHOOK_RETENTION_MESSAGES);
	// a plan's retention_days overrides it for that plan's applications.
	Messages time.Duration `mapstructure:"messages"`
	// Attempts is how long delivery attempts are kept; at most Messages (an
	// attempt never outlives its message), 0 = as long as messages.
	Attempts time.Duration `mapstructure:"attempts"`
	// Audit is how long audit_log rows are kept.
	Audit time.Duration `mapstructure:"audit"`
	// AheadDays is how many days of partitions are created ahead of today.
	AheadDays int `mapstructure:"ahead_days"`
	// Interval is how often partitions are created ahead and old ones dropped.
	Interval time.Duration `mapstructure:"interval"`
}

// DefaultRetention holds the retention defaults.
func DefaultRetention() Retention {
	return Retention{Messages: 30 * 24 * time.Hour, Audit: 365 * 24 * time.Hour, AheadDays: 3, Interval: time.Hour}
}

// Validate checks the retention settings.
func (c Retention) Validate() error {
	var errs []error
	const day = 24 * time.Hour
	if c.Messages < day {
		errs = append(errs, fmt.Errorf("retention.messages: must be at least 24h (partitions are one day), got %s", c.Messages))
	}
	if c.Attempts != 0 && (c.Attempts < day || c.Attempts > c.Messages) {
		errs = append(errs, fmt.Errorf("retention.attempts: must be 0 (as messages) or between 24h and retention.messages (%s), got %s", c.Messages, c.Attempts))
	}
	if c.Audit < day {
		errs = append(errs, fmt.Errorf("retention.audit: must be at least 24h, got %s", c.Audit))
	}
	if c.AheadDays < 1 || c.AheadDays > 31 {
		errs = append(errs, fmt.Errorf("retention.ahead_days: must be between 1 and 31, got %d", c.AheadDays))
	}
	if c.Interval < time.Minute || c.Interval > 6*time.Hour {
		errs = append(errs, fmt.Errorf("retention.interval: must be between 1m and 6h, got %s", c.Interval))
	}
	return errors.Join(errs...)
}

// AttemptsOrMessages is the effective attempts retention.
func (c Retention) AttemptsOrMessages() time.Duration {
	if c.Attempts == 0 {
		return c.Messages
	}
	return c.Attempts
}
