package deliver

import (
	"testing"

	"github.com/ethhook/ethhook/internal/redact"
)

// TestCustomHeadersArePreparedOnceWithReservedNamesSkipped: an endpoint's
// static headers are worked out when it is loaded: canonical names, the
// reserved ones (signature headers, Content-Type, hop-by-hop) left out in
// any spelling, two spellings of one name kept once, credentials masked for
// the attempt log only, sorted by the name it
// shows there.
func TestCustomHeadersArePreparedOnceWithReservedNamesSkipped(t *testing.T) {
	got := customHeaders(map[string]string{"x-tenant": "acme", "X-Tenant": "beta", "authorization": "Bearer s3cret",
		"webhook-signature": "v1,forged", "WEBHOOK-ID": "forged", "content-type": "text/plain", "connection": "close"})
	want := []customHeader{
		{name: "Authorization", values: []string{"Bearer s3cret"}, logName: "authorization", logValue: redact.Mask},
		{name: "X-Tenant", values: []string{"acme"}, logName: "x-tenant", logValue: "acme"}, // "x-tenant" sorts after "X-Tenant"
	}
	if len(got) != len(want) {
		t.Fatalf("custom headers %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.name != w.name || len(g.values) != 1 || g.values[0] != w.values[0] || g.logName != w.logName || g.logValue != w.logValue {
			t.Fatalf("custom header %d = %+v, want %+v", i, g, w)
		}
	}
}
