// Command cleanup removes what a test run may have left behind: the migrated
// template databases, per-test databases of a run killed before its
// cleanups ran, and Redis keys under test prefixes that a process wrote
// after its test had deleted them (a killed child process, a late retry).
// `make test` calls it at the end.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/internal/testenv"
)

func main() {
	ctx := context.Background()
	n, err := testenv.DropLeftovers(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv cleanup:", err)
		os.Exit(1)
	}
	if n > 0 {
		fmt.Printf("testenv cleanup: dropped %d test database(s)\n", n)
	}
	opt, err := rueidis.ParseURL(testenv.RedisURL())
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv cleanup:", err)
		os.Exit(1)
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv cleanup: redis:", err)
		os.Exit(1)
	}
	defer c.Close()
	testenv.DeleteKeys(ctx, c, testenv.RedisTestPrefix)
}
