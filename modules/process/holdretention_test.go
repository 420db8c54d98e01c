package process

import (
	"testing"
	"time"

	"github.com/ethhook/ethhook/config"
)

// TestHoldRetentionNeverOutlivesMessageRetention: released holds are kept
// no longer than the messages they belong to (with 10m message retention
// the 24h default made process_holds the bulk of the database in the soak),
// and a hold retention already shorter is kept.
func TestHoldRetentionNeverOutlivesMessageRetention(t *testing.T) {
	for _, c := range []struct{ messages, hold, want time.Duration }{
		{10 * time.Minute, 24 * time.Hour, 10 * time.Minute},
		{30 * 24 * time.Hour, 24 * time.Hour, 24 * time.Hour},
		{30 * 24 * time.Hour, 2 * time.Hour, 2 * time.Hour},
	} {
		cfg := config.Defaults()
		cfg.Retention.Messages, cfg.Process.HoldRetention = c.messages, c.hold
		if got := holdRetention(cfg); got != c.want {
			t.Fatalf("messages %s, hold %s: hold retention %s, want %s", c.messages, c.hold, got, c.want)
		}
	}
}
