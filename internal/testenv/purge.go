package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ethhook/ethhook/retention"
)

// Purge runs the retention role's purge of deleted endpoints' history
// (retention.PurgeDeleted) at now until it finds nothing left, and returns
// how many rows each pass deleted.
func Purge(t testing.TB, pool *pgxpool.Pool, now time.Time) []int64 {
	t.Helper()
	var passes []int64
	for {
		n, err := retention.PurgeDeleted(context.Background(), pool, now)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return passes
		}
		if passes = append(passes, n); len(passes) > 1000 {
			t.Fatalf("still purging after %d passes", len(passes))
		}
	}
}
