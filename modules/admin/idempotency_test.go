package admin

import (
	"strings"
	"testing"
)

// TestIdempotencyKeyAnswersARetriedCreateWithTheFirstAnswer: the same key
// and body create once and answer the same body again; another body is
// 422 naming the key; another tenant's same key is its own.
func TestIdempotencyKeyAnswersARetriedCreateWithTheFirstAnswer(t *testing.T) {
	h := newHarness(t)
	tokA, appA, keyA := h.member("a@example.com")
	_, appB, keyB := h.member("b@example.com")
	idem := map[string]string{"Idempotency-Key": "create-1"}

	first := h.doWith("POST", "/api/v1/applications", tokA, appCreate{Name: "once"}, idem)
	again := h.doWith("POST", "/api/v1/applications", tokA, appCreate{Name: "once"}, idem)
	if first.Code != 201 || again.Code != 201 || string(first.Body) != string(again.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %s / %d %s", first.Code, first.Body, again.Code, again.Body)
	}
	var apps List[appView]
	h.must(200, "GET", "/api/v1/applications?name=once", tokA, nil).json(t, &apps)
	if len(apps.Data) != 1 {
		t.Fatalf("%d applications named once, want 1", len(apps.Data))
	}
	other := h.doWith("POST", "/api/v1/applications", tokA, appCreate{Name: "twice"}, idem)
	if other.Code != 422 || other.errCode(t).Error.Code != "idempotency_key_reused" || !strings.Contains(string(other.Body), "create-1") {
		t.Fatalf("another body with the same key: %d %s", other.Code, other.Body)
	}

	// Endpoints: the key's tenant is the application.
	ep := map[string]any{"url": "https://example.com/h", "filter": map[string]any{"chains": []int{1}}}
	e1 := h.doWith("POST", "/api/v1/applications/"+appA+"/endpoints", keyA, ep, idem)
	e2 := h.doWith("POST", "/api/v1/applications/"+appA+"/endpoints", keyA, ep, idem)
	eB := h.doWith("POST", "/api/v1/applications/"+appB+"/endpoints", keyB, ep, idem)
	if e1.Code != 201 || string(e1.Body) != string(e2.Body) || eB.Code != 201 || string(eB.Body) == string(e1.Body) {
		t.Fatalf("endpoints: %d / %d / other tenant %d %s", e1.Code, e2.Code, eB.Code, eB.Body)
	}
	var eps List[endpointView]
	h.must(200, "GET", "/api/v1/applications/"+appA+"/endpoints", keyA, nil).json(t, &eps)
	if len(eps.Data) != 1 {
		t.Fatalf("%d endpoints after a retried create, want 1", len(eps.Data))
	}
	// Same key, same body, another path: another request.
	if r := h.doWith("POST", "/api/v1/applications/"+appA+"/endpoints/"+eps.Data[0].ID+"/test", keyA, nil, idem); r.Code != 422 {
		t.Fatalf("the key on another route: %d %s", r.Code, r.Body)
	}
	// Test events: one message for two sends with one key.
	tk := map[string]string{"Idempotency-Key": "test-1"}
	t1 := h.doWith("POST", "/api/v1/applications/"+appA+"/endpoints/"+eps.Data[0].ID+"/test", keyA, nil, tk)
	t2 := h.doWith("POST", "/api/v1/applications/"+appA+"/endpoints/"+eps.Data[0].ID+"/test", keyA, nil, tk)
	if t1.Code != 202 || string(t1.Body) != string(t2.Body) {
		t.Fatalf("test events: %d %s / %d %s", t1.Code, t1.Body, t2.Code, t2.Body)
	}
}

// TestIdempotencyKeyIsBounded: an over-long or non-printable key is a 400
// naming the header, and nothing is created.
func TestIdempotencyKeyIsBounded(t *testing.T) {
	h := newHarness(t)
	for _, k := range []string{strings.Repeat("k", maxIdempotencyKey+1), "tab\there"} {
		r := h.doWith("POST", "/api/v1/applications", h.admin, appCreate{Name: "bounded"}, map[string]string{"Idempotency-Key": k})
		if r.Code != 400 || !strings.Contains(string(r.Body), "Idempotency-Key") {
			t.Fatalf("key %.20q: %d %s", k, r.Code, r.Body)
		}
	}
	ok := h.doWith("POST", "/api/v1/applications", h.admin, appCreate{Name: "bounded"}, map[string]string{"Idempotency-Key": strings.Repeat("k", maxIdempotencyKey)})
	if ok.Code != 201 {
		t.Fatalf("a key of the maximum length: %d %s", ok.Code, ok.Body)
	}
}

// TestIdempotencyKeyIsNotKeptForAFailedRequest: a 5xx or a running
// request keeps nothing a retry would see; an invalid body's 400 is kept
// (the same body stays invalid).
func TestIdempotencyKeyKeepsA400ForTheSameBody(t *testing.T) {
	h := newHarness(t)
	idem := map[string]string{"Idempotency-Key": "bad-1"}
	r1 := h.doWith("POST", "/api/v1/applications", h.admin, map[string]any{"name": ""}, idem)
	r2 := h.doWith("POST", "/api/v1/applications", h.admin, map[string]any{"name": ""}, idem)
	if r1.Code != 400 || r2.Code != 400 || r2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("%d / %d %v", r1.Code, r2.Code, r2.Header)
	}
}

// TestReplayOnADisabledEndpointIsRefused: 409 naming the endpoint, for a
// range and for one message, until it is enabled again.
func TestReplayOnADisabledEndpointIsRefused(t *testing.T) {
	h := newHarness(t)
	_, appID, key := h.member("r@example.com")
	base := "/api/v1/applications/" + appID + "/endpoints"
	var ep endpointCreated
	h.must(201, "POST", base, key, map[string]any{"url": "https://example.com/h", "filter": map[string]any{"chains": []int{1}}}).json(t, &ep)
	var sent testSent
	h.must(202, "POST", base+"/"+ep.ID+"/test", key, nil).json(t, &sent)
	if _, err := h.store.Pool().Exec(t.Context(), `UPDATE message_states SET state = 'dead' WHERE id = $1`, sent.MessageID); err != nil {
		t.Fatal(err)
	}
	h.must(200, "PATCH", base+"/"+ep.ID, key, map[string]any{"enabled": false, "disabled_reason": "maintenance"})
	r := h.must(409, "POST", base+"/"+ep.ID+"/replay", key, map[string]any{"from_block": 0})
	if e := r.errCode(t); e.Error.Code != "endpoint_disabled" || !strings.Contains(e.Error.Message, ep.ID) || !strings.Contains(e.Error.Message, "maintenance") {
		t.Fatalf("range replay: %s", r.Body)
	}
	h.must(409, "POST", "/api/v1/applications/"+appID+"/messages/"+sent.MessageID+"/replay", key, nil)
	h.must(200, "PATCH", base+"/"+ep.ID, key, map[string]any{"enabled": true})
	var rep replayed
	h.must(202, "POST", base+"/"+ep.ID+"/replay", key, map[string]any{"from_block": 0}).json(t, &rep)
	if rep.Replayed != 1 {
		t.Fatalf("replayed %d after enabling", rep.Replayed)
	}
}

// TestDisabledReasonIsKeptOrRefused: the reason of a PATCH that disables
// is stored; a reason for an enabled endpoint without disabling it is 400.
func TestDisabledReasonIsKeptOrRefused(t *testing.T) {
	h := newHarness(t)
	_, appID, key := h.member("d@example.com")
	base := "/api/v1/applications/" + appID + "/endpoints"
	var ep endpointCreated
	h.must(201, "POST", base, key, map[string]any{"url": "https://example.com/h", "filter": map[string]any{"chains": []int{1}}}).json(t, &ep)
	if r := h.must(400, "PATCH", base+"/"+ep.ID, key, map[string]any{"disabled_reason": "why"}); r.errCode(t).Error.Fields["disabled_reason"] == "" {
		t.Fatalf("%s", r.Body)
	}
	h.must(400, "PATCH", base+"/"+ep.ID, key, map[string]any{"enabled": false, "disabled_reason": strings.Repeat("x", maxDisabledReason+1)})
	var got endpointView
	h.must(200, "PATCH", base+"/"+ep.ID, key, map[string]any{"enabled": false, "disabled_reason": "migrating"}).json(t, &got)
	if got.Enabled || got.DisabledReason != "migrating" {
		t.Fatalf("after disabling: %+v", got)
	}
	h.must(200, "PATCH", base+"/"+ep.ID, key, map[string]any{"disabled_reason": "still migrating"}).json(t, &got)
	if got.DisabledReason != "still migrating" {
		t.Fatalf("new reason of a disabled endpoint: %+v", got)
	}
}

// TestIdempotencyKeyEndsAfter24Hours: a key older than a day is free again
// (a new body creates), and the purge drops such rows.
func TestIdempotencyKeyEndsAfter24Hours(t *testing.T) {
	h := newHarness(t)
	idem := map[string]string{"Idempotency-Key": "old-1"}
	h.must(201, "POST", "/api/v1/applications", h.admin, appCreate{Name: "day one"})
	if r := h.doWith("POST", "/api/v1/applications", h.admin, appCreate{Name: "day one"}, idem); r.Code != 201 {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	if _, err := h.store.Pool().Exec(t.Context(), `UPDATE idempotency_keys SET created_at = now() - interval '25 hours'`); err != nil {
		t.Fatal(err)
	}
	if r := h.doWith("POST", "/api/v1/applications", h.admin, appCreate{Name: "day two"}, idem); r.Code != 201 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("a key past 24 h with a new body: %d %s", r.Code, r.Body)
	}
	if _, err := h.store.Pool().Exec(t.Context(), `UPDATE idempotency_keys SET created_at = now() - interval '25 hours'`); err != nil {
		t.Fatal(err)
	}
	h.m.purgeIdempotencyKeys(t.Context())
	var n int
	if err := h.store.Pool().QueryRow(t.Context(), `SELECT count(*) FROM idempotency_keys`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d keys after the purge (%v)", n, err)
	}
}

// TestIdempotencyKeyOfARunningRequestIsAConflict: while the first request
// with a key runs (its row has no answer yet), a retry gets 409 and
// Retry-After, and creates nothing.
func TestIdempotencyKeyOfARunningRequestIsAConflict(t *testing.T) {
	h := newHarness(t)
	var me whoami
	h.must(200, "GET", "/api/v1/auth/me", h.admin, nil).json(t, &me)
	body := []byte(`{"name":"running"}`)
	if _, err := h.store.Pool().Exec(t.Context(), `INSERT INTO idempotency_keys (scope, key, request_hash) VALUES ($1, 'run-1', $2)`,
		"user:"+me.ID, requestHash("POST", "/api/v1/applications", body)); err != nil {
		t.Fatal(err)
	}
	r := h.doWith("POST", "/api/v1/applications", h.admin, body, map[string]string{"Idempotency-Key": "run-1"})
	if r.Code != 409 || r.Header.Get("Retry-After") == "" || !strings.Contains(string(r.Body), "still running") {
		t.Fatalf("%d %v %s", r.Code, r.Header, r.Body)
	}
	var apps List[appView]
	h.must(200, "GET", "/api/v1/applications?name=running", h.admin, nil).json(t, &apps)
	if len(apps.Data) != 0 {
		t.Fatalf("a retry of a running request created %d applications", len(apps.Data))
	}
}
