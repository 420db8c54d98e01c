package app

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestEndpointCommandsSetHeadersAndOperationalEvents: --header on create
// and update (the given set replaces the old; ” clears), a malformed or
// reserved header is an error naming it, and --ops-event makes an
// operational endpoint without a chain.
func TestEndpointCommandsSetHeadersAndOperationalEvents(t *testing.T) {
	rt := cliRuntime(t)
	app := struct{ ID string }{cliApp(t, rt, "ops")}

	out, err := runCmd(t, newEndpointCmd(rt), "create", "--app", app.ID, "--url", "https://example.com/h", "--chain", "1",
		"--header", "X-Tenant: acme", "--header", "authorization: Bearer t", "--json")
	if err != nil {
		t.Fatalf("create with headers: %v\n%s", err, out)
	}
	var ep struct {
		ID      string
		Headers map[string]string
	}
	if json.Unmarshal([]byte(out), &ep); ep.Headers["X-Tenant"] != "acme" || ep.Headers["Authorization"] != "Bearer t" {
		t.Fatalf("headers %v in %s", ep.Headers, out)
	}
	if _, err := runCmd(t, newEndpointCmd(rt), "update", "--app", app.ID, ep.ID, "--header", "Webhook-Signature: v1,x"); err == nil ||
		!strings.Contains(err.Error(), "headers.Webhook-Signature") {
		t.Fatalf("reserved header: %v", err)
	}
	if _, err := runCmd(t, newEndpointCmd(rt), "update", "--app", app.ID, ep.ID, "--header", "no colon"); err == nil ||
		!strings.Contains(err.Error(), `--header "no colon"`) {
		t.Fatalf("malformed header: %v", err)
	}
	out, err = runCmd(t, newEndpointCmd(rt), "update", "--app", app.ID, ep.ID, "--header", "", "--json")
	if err != nil || strings.Contains(out, "X-Tenant") {
		t.Fatalf("--header '' should clear: %v\n%s", err, out)
	}

	out, err = runCmd(t, newEndpointCmd(rt), "create", "--app", app.ID, "--url", "https://ops.example.com/h",
		"--ops-event", "endpoint.disabled", "--ops-event", "ingest.stalled", "--json")
	if err != nil || !strings.Contains(out, `"endpoint.disabled"`) || !strings.Contains(out, `"ingest.stalled"`) {
		t.Fatalf("create operational endpoint: %v\n%s", err, out)
	}
}
