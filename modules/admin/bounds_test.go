package admin

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/config"
)

// TestHostileEndpointFiltersAreRefusedWith400NamingTheLimit sends the
// inputs that took the process to 17 GB (a 200,000-level array in a 400 KB
// signature) and its ABI twin, as a member: each must be a 400 naming the
// field and the limit, at a bounded cost in memory.
func TestHostileEndpointFiltersAreRefusedWith400NamingTheLimit(t *testing.T) {
	h := newHarness(t)
	tok, app, _ := h.member("bomber@example.com")
	path := "/api/v1/applications/" + app + "/endpoints"
	body := func(filter string) string {
		return `{"url":"https://receiver.example/hook","filter":{"chains":[1],` + filter + `}}`
	}
	deep := strings.Repeat("[]", 200000)
	half := deep[:200000]                                                                                            // 100,000 levels: an ABI under MaxABIBytes, so the type bounds answer
	bigABI := "[" + strings.TrimSuffix(strings.Repeat(`{"type":"event","name":"E","inputs":[]},`, 20000), ",") + "]" // ~780 KB
	tests := []struct {
		name, body, field, limit string
	}{
		{"deep signature", body(`"events":["E(uint256` + deep + `)"]`), "events[0]", "MaxDeclLen"},
		{"deep ABI type", body(`"abi":[{"type":"event","name":"E","inputs":[{"name":"v","type":"uint256` + half + `"}]}]`), "abi", "MaxTypeLen"},
		{"huge ABI", body(`"abi":` + bigABI), "abi", "MaxABIBytes"},
		{"deep array in a short type", body(`"events":["E(uint256` + strings.Repeat("[]", 9) + `)"]`), "events[0]", "MaxArrayDepth"},
		{"deep condition", body(`"events":["Transfer"],"where":["` + strings.Repeat("not ", 100000) + `value > 1"]`), "where[0]", "MaxConditionLen"},
		{"many addresses", body(`"addresses":["` + strings.TrimSuffix(strings.Repeat(fmt.Sprintf("0x%040x\",\"", 1), 1001), `","`) + `"]`), "addresses", "MaxAddresses"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			r := h.do("POST", path, tok, tc.body)
			runtime.ReadMemStats(&after)
			if r.Code != 400 {
				t.Fatalf("status %d, want 400: %.300s", r.Code, r.Body)
			}
			e := r.errCode(t)
			if msg := e.Error.Fields[tc.field]; !strings.Contains(msg, tc.limit) {
				t.Fatalf("fields %v, want %s naming %s", e.Error.Fields, tc.field, tc.limit)
			}
			// The body is read, decoded and echoed in part; 64 MiB is many
			// times that and far below the gigabytes an unbounded parse took.
			if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
				t.Fatalf("request allocated %d MiB, want < 64 MiB", got>>20)
			}
		})
	}
}

func TestMemberOverMaxAppsPerUserGets403PlanLimit(t *testing.T) {
	h := newHarness(t, func(c *config.Admin) { c.MaxAppsPerUser = 2 })
	tok, _, _ := h.member("apps@example.com") // creates the first
	h.must(201, "POST", "/api/v1/applications", tok, appCreate{Name: "second"})
	r := h.must(403, "POST", "/api/v1/applications", tok, appCreate{Name: "third"})
	if e := r.errCode(t); e.Error.Code != "plan_limit" || !strings.Contains(e.Error.Message, "admin.max_apps_per_user allows 2") {
		t.Fatalf("error %+v, want plan_limit naming admin.max_apps_per_user", e.Error)
	}
	for i := 0; i < 3; i++ {
		h.must(201, "POST", "/api/v1/applications", h.admin, appCreate{Name: fmt.Sprintf("admin's %d", i)})
	}
}

// TestPlanFieldsOutOfRangeAre400sNamingTheField: values past int4 used to
// fail the insert with a 500.
func TestPlanFieldsOutOfRangeAre400sNamingTheField(t *testing.T) {
	h := newHarness(t)
	h.must(201, "POST", "/api/v1/plans", h.admin, map[string]any{"id": "p", "name": "P", "monthly_quota": 1, "max_endpoints": 1})
	for _, tc := range []struct {
		method, path, field string
		body                map[string]any
	}{
		{"POST", "/api/v1/plans", "max_endpoints", map[string]any{"name": "x", "monthly_quota": 1, "max_endpoints": 3000000000}},
		{"POST", "/api/v1/plans", "rate_limit", map[string]any{"name": "x", "monthly_quota": 1, "max_endpoints": 1, "rate_limit": 2147483648}},
		{"POST", "/api/v1/plans", "monthly_quota", map[string]any{"name": "x", "monthly_quota": int64(1) << 62, "max_endpoints": 1}},
		{"PATCH", "/api/v1/plans/p", "max_endpoints", map[string]any{"max_endpoints": 2147483648}},
		{"PATCH", "/api/v1/plans/p", "rate_limit", map[string]any{"rate_limit": -1}},
	} {
		r := h.must(400, tc.method, tc.path, h.admin, tc.body)
		if e := r.errCode(t); e.Error.Fields[tc.field] == "" {
			t.Errorf("%s %s %v: fields %v, want %s named", tc.method, tc.path, tc.body, e.Error.Fields, tc.field)
		}
	}
	h.must(200, "PATCH", "/api/v1/plans/p", h.admin, map[string]any{"max_endpoints": 1000000, "rate_limit": 1000000, "monthly_quota": 1000000000000})
}
