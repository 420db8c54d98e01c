package config

import (
	"errors"
	"fmt"
	"time"
)

// Retention configures how long traffic tables keep their rows (owned by
// package retention). Rows go a whole partition at a time (PartitionWidth,
// one UTC day by default): a partition is dropped once its newest possible
// row is older than the retention, so a row lives at least the retention
// and at most one partition width longer. A partition still holding a
// message in flight (pending, delivering, failed awaiting a retry) is kept
// until that message is finished.
type Retention struct {
	// Messages is how long messages are kept (ETHHOOK_RETENTION_MESSAGES);
	// a plan's retention_days overrides it for that plan's applications.
	Messages time.Duration `mapstructure:"messages"`
	// Attempts is how long delivery attempts are kept; at most Messages (an
	// attempt never outlives its message), 0 = as long as messages.
	Attempts time.Duration `mapstructure:"attempts"`
	// Audit is how long audit_log rows are kept.
	Audit time.Duration `mapstructure:"audit"`
	// AheadDays is how many partitions are created ahead of the current one
	// (days with the default width; the name is from when partitions were
	// always days).
	AheadDays int `mapstructure:"ahead_days"`
	// Interval is how often partitions are created ahead and old ones
	// dropped; at most PartitionWidth.
	Interval time.Duration `mapstructure:"interval"`
	// PartitionWidth is the time range of one partition: 5m..24h, dividing a
	// day evenly (so partitions align on UTC midnight). The retentions must
	// be at least one width. A database that changes width keeps its
	// partitions: the new width starts after the last partition holding rows
	// (empty wider ones ahead of now are cut back first).
	PartitionWidth time.Duration `mapstructure:"partition_width"`
}

// MinPartitionWidth is the narrowest partition retention.partition_width
// takes.
const MinPartitionWidth = 5 * time.Minute

// DefaultRetention holds the retention defaults.
func DefaultRetention() Retention {
	return Retention{Messages: 30 * 24 * time.Hour, Audit: 365 * 24 * time.Hour, AheadDays: 3, Interval: time.Hour, PartitionWidth: 24 * time.Hour}
}

// Validate checks the retention settings.
func (c Retention) Validate() error {
	var errs []error
	const day = 24 * time.Hour
	w := c.PartitionWidth
	if w < MinPartitionWidth || w > day || day%w != 0 || w%time.Minute != 0 {
		errs = append(errs, fmt.Errorf("retention.partition_width: must be whole minutes from 5m to 24h dividing a day evenly (5m, 10m, 15m, 20m, 30m, 1h, 2h, 3h, 4h, 6h, 8h, 12h, 24h, ...), got %s", w))
		w = day // judge the rest against the default
	}
	if c.Messages < w {
		errs = append(errs, fmt.Errorf("retention.messages: must be at least retention.partition_width (%s), got %s", w, c.Messages))
	}
	if c.Attempts != 0 && (c.Attempts < w || c.Attempts > c.Messages) {
		errs = append(errs, fmt.Errorf("retention.attempts: must be 0 (as messages) or between retention.partition_width (%s) and retention.messages (%s), got %s", w, c.Messages, c.Attempts))
	}
	if c.Audit < w {
		errs = append(errs, fmt.Errorf("retention.audit: must be at least retention.partition_width (%s), got %s", w, c.Audit))
	}
	if c.AheadDays < 1 || c.AheadDays > 31 {
		errs = append(errs, fmt.Errorf("retention.ahead_days: must be between 1 and 31, got %d", c.AheadDays))
	}
	if c.Interval < time.Minute || c.Interval > min(6*time.Hour, w) {
		errs = append(errs, fmt.Errorf("retention.interval: must be between 1m and %s (6h and at most retention.partition_width), got %s", min(6*time.Hour, w), c.Interval))
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
