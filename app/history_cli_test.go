package app

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/hook"
)

// TestEndpointCreateFromBlockRecordsAHistory: --from-block creates the
// endpoint with a pending history; with two chains it is refused naming
// from_block.
func TestEndpointCreateFromBlockRecordsAHistory(t *testing.T) {
	rt := cliRuntime(t)
	app := struct{ ID string }{cliApp(t, rt, "shop")}
	out, err := runCmd(t, newEndpointCmd(rt), "create", "--app", app.ID, "--url", "https://example.com/h", "--chain", "31337", "--from-block", "5", "--json")
	if err != nil {
		t.Fatalf("endpoint create: %v\n%s", err, out)
	}
	var ep hook.Endpoint
	if err := json.Unmarshal([]byte(out), &ep); err != nil || ep.History == nil || ep.History.FromBlock != 5 || ep.History.State != hook.HistoryPending {
		t.Fatalf("endpoint create --from-block: %v %s", err, out)
	}
	_, err = runCmd(t, newEndpointCmd(rt), "create", "--app", app.ID, "--url", "https://example.com/h", "--chain", "31337", "--chain", "1", "--from-block", "5")
	if err == nil || !strings.Contains(err.Error(), "from_block") {
		t.Fatalf("two chains with --from-block: %v", err)
	}
}
