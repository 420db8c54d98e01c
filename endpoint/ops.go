package endpoint

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/ops"
)

// ErrAdminOnly means a member or API key tried to make, change or unmake
// an operational endpoint (ops_events): only an admin may; the admin API
// maps it to 403. It is a hook.ErrForbidden.
var ErrAdminOnly = hook.Forbidden("ops_events: only an admin can create or change an operational endpoint")

// validateOps checks an operational endpoint: known event types, each
// once (at most len(ops.Types)), and none of the chain settings, which it
// would never use.
func validateOps(e *hook.Endpoint, fields map[string]string) {
	seen := map[string]bool{}
	for i, t := range e.OpsEvents {
		switch {
		case !ops.Valid(t):
			fields[fmt.Sprintf("ops_events[%d]", i)] = fmt.Sprintf("unknown event type %q; one of %s", t, strings.Join(ops.Types, ", "))
		case seen[t]:
			fields[fmt.Sprintf("ops_events[%d]", i)] = fmt.Sprintf("%q is listed twice", t)
		}
		seen[t] = true
	}
	if len(e.OpsEvents) > len(ops.Types) {
		fields["ops_events"] = fmt.Sprintf("at most %d types, got %d", len(ops.Types), len(e.OpsEvents))
	}
	slices.Sort(e.OpsEvents)
	f := e.Filter
	if len(f.Chains) == 0 {
		f.Chains = nil // [] as read back from the table is no filter either
	}
	if !reflect.DeepEqual(f, hook.Filter{}) {
		fields["filter"] = "an operational endpoint (ops_events) receives EthHook's own events: give no filter"
	}
	if e.Confirmations != 0 || e.BatchMax > 1 {
		fields["ops_events"] = "an operational endpoint takes no confirmations or batching"
	}
}

// opsEvents is the column value: never NULL.
func opsEvents(t []string) []string {
	if t == nil {
		return []string{}
	}
	return t
}
