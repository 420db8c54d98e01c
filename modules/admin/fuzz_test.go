package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var fuzzMethods = []string{"GET", "POST", "PATCH", "DELETE", "PUT", "HEAD"}

// FuzzAPI sends arbitrary methods, paths, queries and bodies to the API as
// an admin (the caller that reaches the most code) and fails on any 5xx, a
// panic, or an error that is not in the one error shape. "{app}" in a path
// becomes a real application id. Seeds: testdata/fuzz/FuzzAPI.
func FuzzAPI(f *testing.F) {
	h := newHarness(f)
	var app appView
	h.must(201, "POST", "/api/v1/applications", h.admin, appCreate{Name: "fuzz"}).json(f, &app)
	var k keyCreated
	h.must(201, "POST", "/api/v1/applications/"+app.ID+"/api-keys", h.admin, keyCreate{Name: "fuzz"}).json(f, &k)

	f.Add(uint8(1), "/applications", `{"name":"a"}`)
	f.Add(uint8(1), "/applications", `{"name":5}`)
	f.Add(uint8(2), "/applications/{app}", `{"plan_id":null,"name":"\u0000"}`)
	f.Add(uint8(0), "/applications?limit=-1&cursor=!!", ``)
	f.Add(uint8(1), "/users", `{"email":"a@b.c","password":"0123456789","app_ids":["{app}","x"]}`)
	f.Add(uint8(1), "/plans", `{"name":"p","monthly_quota":1e99,"max_endpoints":1}`)
	f.Add(uint8(0), "/chains/31337/events?cursor=1-1&limit=200", ``)
	f.Add(uint8(0), "/applications/{app}/usage?format=csv&from=2024-01&to=1999-99", ``)
	f.Add(uint8(1), "/auth/login", `{"email":"root@example.com","password":"x"}`)
	f.Add(uint8(3), "/applications/{app}/api-keys/"+k.ID, ``)
	f.Fuzz(func(t *testing.T, mi uint8, path, body string) {
		method := fuzzMethods[int(mi)%len(fuzzMethods)]
		path = strings.ReplaceAll(path, "{app}", app.ID)
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "http://ethhook.test/api/v1"+path, strings.NewReader(body))
		if err != nil {
			return // net/http never hands such a request to a handler
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req = req.WithContext(ctx)
		req.Header.Set("Authorization", "Bearer "+h.admin)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.m.Handler().ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && method != "HEAD" {
			var e ErrorBody
			if err := json.NewDecoder(bytes.NewReader(rec.Body.Bytes())).Decode(&e); err != nil || e.Error.Code == "" {
				t.Fatalf("%s %s: %d answer not in the error shape: %s", method, path, rec.Code, rec.Body)
			}
		}
	})
}
