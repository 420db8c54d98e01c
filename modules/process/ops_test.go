package process

import (
	"context"
	"testing"

	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/ops"
)

// TestOperationalEndpointsAreNotInTheIndex: an endpoint with ops_events
// gets EthHook's own events only; neither the start-up load nor a change
// announcement puts it in the index chain logs are matched against.
func TestOperationalEndpointsAreNotInTheIndex(t *testing.T) {
	e := newEnv(t)
	chainEP := e.endpoint(endpoint.Input{})
	zero := 0
	opsEP, _, err := e.svc.Create(context.Background(), hook.Operator, e.app, endpoint.Input{URL: "https://ops.example/hook",
		OpsEvents: []string{ops.IngestStalled}, Confirmations: &zero})
	if err != nil {
		t.Fatal(err)
	}
	r := e.start()
	if r.m.ix.get(opsEP.ID) != nil || r.m.ix.get(chainEP.ID) == nil || r.m.ix.size() != 1 {
		t.Fatalf("index holds %d endpoints (ops endpoint in it: %v)", r.m.ix.size(), r.m.ix.get(opsEP.ID) != nil)
	}
	if err := r.m.refreshOne(context.Background(), opsEP.ID); err != nil {
		t.Fatal(err)
	}
	if r.m.ix.get(opsEP.ID) != nil {
		t.Fatal("a change announcement put the operational endpoint in the index")
	}
}
