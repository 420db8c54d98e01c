package admin

import (
	"strings"
	"testing"
)

// TestEndpointFinalityThroughTheAPI: finality is set on create, shown on
// get, changed by patch, and confirmations keeps working as
// confirmations:N. Bad values are 400s naming the key and the value.
func TestEndpointFinalityThroughTheAPI(t *testing.T) {
	h := newHarness(t)
	tok, app, _ := h.member("finality@example.com")
	path := "/api/v1/applications/" + app + "/endpoints"
	type view struct {
		ID            string `json:"id"`
		Finality      string `json:"finality"`
		Confirmations int    `json:"confirmations"`
		TwoPhase      bool   `json:"two_phase"`
	}
	var ep view
	h.must(201, "POST", path, tok, `{"url":"https://receiver.example/hook","filter":{"chains":[1]},"finality":"finalized","two_phase":true}`).json(t, &ep)
	if ep.Finality != "finalized" || !ep.TwoPhase || ep.Confirmations != 0 {
		t.Fatalf("created %+v, want finalized, two-phase", ep)
	}
	var got view
	h.must(200, "GET", path+"/"+ep.ID, tok, nil).json(t, &got)
	if got != ep {
		t.Fatalf("get %+v, want %+v", got, ep)
	}
	h.must(200, "PATCH", path+"/"+ep.ID, tok, `{"confirmations":5}`).json(t, &got)
	if got.Finality != "confirmations:5" || got.Confirmations != 5 {
		t.Fatalf("after confirmations 5: %+v, want confirmations:5", got)
	}
	h.must(200, "PATCH", path+"/"+ep.ID, tok, `{"finality":"safe"}`).json(t, &got)
	if got.Finality != "safe" || got.Confirmations != 0 {
		t.Fatalf("after finality safe: %+v", got)
	}
	h.must(200, "PATCH", path+"/"+ep.ID, tok, `{"finality":"latest","two_phase":false}`).json(t, &got)
	if got.Finality != "latest" || got.TwoPhase {
		t.Fatalf("after latest: %+v", got)
	}
	for _, tc := range []struct{ body, field, value string }{
		{`{"finality":"final"}`, "finality", `"final"`},
		{`{"finality":"confirmations:1001"}`, "finality", "confirmations:1001"},
		{`{"finality":"confirmations:-1"}`, "finality", "confirmations:-1"},
		{`{"finality":"confirmations:2","confirmations":3}`, "confirmations", "3"},
		{`{"finality":"latest","two_phase":true}`, "two_phase", "latest"},
		{`{"finality":"safe","two_phase":true,"batch_max":5,"batch_wait_ms":100}`, "two_phase", "batch_max 5"},
	} {
		r := h.do("PATCH", path+"/"+ep.ID, tok, tc.body)
		if r.Code != 400 {
			t.Fatalf("%s: status %d, want 400: %s", tc.body, r.Code, r.Body)
		}
		if msg := r.errCode(t).Error.Fields[tc.field]; !strings.Contains(msg, tc.value) {
			t.Fatalf("%s: fields %v, want %s naming %s", tc.body, r.errCode(t).Error.Fields, tc.field, tc.value)
		}
	}
}
