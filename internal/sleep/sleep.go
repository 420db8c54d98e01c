// Package sleep waits in the loops of long-running modules (retries,
// backoff, polling) without outliving their context.
package sleep

import (
	"context"
	"time"
)

// For waits d, or until ctx ends; it reports whether the full wait passed
// (false: ctx ended). A d of zero or less returns at once.
func For(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
