package admin

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
)

// checkedOps records "<operationId> <status>" for every answer any test of
// the package validated against the served document.
var checkedOps sync.Map

// TestMain fails a whole-package run in which some operation was never
// answered at its success status and checked against the document: every
// route must be exercised by some test, whichever file it is in (the
// contract walk in TestEveryOperationAnswersAsDocumented covers most; the
// preview and dead-letter tests need a devnet or a stream entry).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" {
		var missing []string
		var mod Module
		for _, r := range mod.routeTable() {
			if _, ok := checkedOps.Load(r.id + " " + strconv.Itoa(r.status)); !ok {
				missing = append(missing, r.id)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			fmt.Fprintf(os.Stderr, "FAIL: operations never checked against the document at their success status: %v\n", missing)
			code = 1
		}
	}
	os.Exit(code)
}
