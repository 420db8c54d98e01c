// Command cleanup drops what a test run may have left in Postgres: the
// migrated template databases and the per-test databases of a run that was
// killed before its cleanups ran. `make test` calls it at the end.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ethhook/ethhook/internal/testenv"
)

func main() {
	n, err := testenv.DropLeftovers(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv cleanup:", err)
		os.Exit(1)
	}
	if n > 0 {
		fmt.Printf("testenv cleanup: dropped %d test database(s)\n", n)
	}
}
