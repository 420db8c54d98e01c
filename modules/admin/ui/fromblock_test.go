package ui

import (
	"net/url"
	"testing"
)

// TestFormFromBlockBecomesTheHistoryStart: the new-endpoint form's
// from_block reaches the create call (on History); a bad one is a field
// error; none means no history.
func TestFormFromBlockBecomesTheHistoryStart(t *testing.T) {
	f := parseEndpointForm(url.Values{"url": {"https://example.com/h"}, "chains": {"31337"}, "from_block": {" 12 "}})
	if ep := f.toEndpoint(); len(f.Fields) != 0 || ep.History == nil || ep.History.FromBlock != 12 {
		t.Fatalf("from_block 12: %+v %v", ep.History, f.Fields)
	}
	f = parseEndpointForm(url.Values{"url": {"https://example.com/h"}, "chains": {"31337"}, "from_block": {"-3"}})
	if ep := f.toEndpoint(); f.Fields["from_block"] == "" || ep.History != nil {
		t.Fatalf("from_block -3: %+v %v", ep.History, f.Fields)
	}
	f = parseEndpointForm(url.Values{"url": {"https://example.com/h"}, "chains": {"31337"}})
	if ep := f.toEndpoint(); ep.History != nil {
		t.Fatalf("no from_block: %+v", ep.History)
	}
}
