package message

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
)

// TestSearchByDecodedArgumentAndStatusCode: messages of app A get decoded
// Transfer arguments and a last status; a search by to (any case of the
// address), by two arguments, and by status code finds exactly the right
// ones, never another application's, and the bounds (count, names,
// window, status range) are refused naming the key.
func TestSearchByDecodedArgumentAndStatusCode(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	to := "0xAbCdEf0000000000000000000000000000000001"
	for i, id := range f.ids {
		dst := "0x00000000000000000000000000000000000000ff"
		if i%3 == 0 {
			dst = strings.ToLower(to)
		}
		payload := fmt.Sprintf(`{"type":"log","decoded":{"name":"Transfer","args":{"from":"0x01","to":%q,"value":"%d"}}}`, dst, 1000*i)
		if _, err := f.svc.pool.Exec(ctx, `UPDATE messages SET payload = $2 WHERE id = $1`, id, payload); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.pool.Exec(ctx, `UPDATE message_states SET last_status = $2 WHERE id = $1`, id, 200+100*(i%4)); err != nil {
			t.Fatal(err)
		}
	}
	// app B has the same recipient: never in A's results.
	if _, err := f.svc.pool.Exec(ctx, `UPDATE messages SET payload = $1 WHERE app_id = 'app_B'`,
		fmt.Sprintf(`{"decoded":{"args":{"to":%q}}}`, strings.ToLower(to))); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.pool.Exec(ctx, `UPDATE message_states SET last_status = 200 WHERE app_id = 'app_B'`); err != nil {
		t.Fatal(err)
	}
	window := func(fl Filter) Filter {
		fl.AppID, fl.Since, fl.Until = f.appA, f.base.Add(-time.Hour), f.base.Add(time.Hour)
		return fl
	}
	list := func(fl Filter) []string {
		t.Helper()
		p, err := f.svc.List(ctx, hook.Operator, fl)
		if err != nil {
			t.Fatal(err)
		}
		return ids(p)
	}
	if got := list(window(Filter{Args: []Arg{{"to", strings.ToUpper(to[2:])}}})); len(got) != 0 {
		t.Fatalf("a value without 0x matched case-insensitively: %v", got)
	}
	got := list(window(Filter{Args: []Arg{{"to", to}}}))
	if want := []string{"msg_A09", "msg_A06", "msg_A03", "msg_A00"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("to=%s: %v, want %v", to, got, want)
	}
	got = list(window(Filter{Args: []Arg{{"to", to}, {"value", "6000"}}}))
	if !reflect.DeepEqual(got, []string{"msg_A06"}) {
		t.Fatalf("to and value: %v", got)
	}
	got = list(window(Filter{StatusCode: 500, Args: []Arg{{"to", to}}}))
	if !reflect.DeepEqual(got, []string{"msg_A03"}) {
		t.Fatalf("status 500 and to: %v", got)
	}
	got = list(window(Filter{StatusCode: 300}))
	if !reflect.DeepEqual(got, []string{"msg_A09", "msg_A05", "msg_A01"}) {
		t.Fatalf("status 300: %v", got)
	}
	// With no since, a search by argument covers the last 24 h: the
	// fixture's messages are older.
	if got := list(Filter{AppID: f.appA, Args: []Arg{{"to", to}}}); len(got) != 0 {
		t.Fatalf("default window found %v", got)
	}
	for _, c := range []struct {
		fl   Filter
		want string
	}{
		{window(Filter{Args: []Arg{{"a", "1"}, {"b", "1"}, {"c", "1"}, {"d", "1"}}}), "at most 3"},
		{window(Filter{Args: []Arg{{"to'); DROP TABLE messages; --", "1"}}}), "arg: name"},
		{window(Filter{Args: []Arg{{"to", strings.Repeat("1", 257)}}}), "longer than 256"},
		{Filter{AppID: f.appA, Since: f.base.Add(-8 * 24 * time.Hour), Until: f.base, Args: []Arg{{"to", to}}}, "at most 168h0m0s"},
		{window(Filter{StatusCode: 99}), "status_code: 99"},
	} {
		_, err := f.svc.List(ctx, hook.Operator, c.fl)
		var fe hook.FieldErrors
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want field errors with %q", c.fl.Args, err, c.want)
		}
	}
	if _, err := ParseArg("to"); err == nil || !strings.Contains(err.Error(), "name:value") {
		t.Fatalf("ParseArg without colon: %v", err)
	}
}

// TestEndpointHealthOverTheLastHourAndDay: attempts of ep_A at known times
// give the success rate, percentiles and newest failure per window; an
// attempt older than a day counts in neither; another app cannot see it.
func TestEndpointHealthOverTheLastHourAndDay(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	if _, err := f.svc.pool.Exec(ctx, `DELETE FROM delivery_history`); err != nil {
		t.Fatal(err)
	}
	add := func(ago time.Duration, status *int, latency int, errText string) {
		if _, err := f.svc.pool.Exec(ctx, `INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt, status_code, error, latency_ms, created_at)
			VALUES ('msg_A00', 'ep_A', 'app_A', 1, $1, $2, $3, $4)`, status, errText, latency, now.Add(-ago)); err != nil {
			t.Fatal(err)
		}
	}
	ok, bad := 200, 503
	for i := 1; i <= 9; i++ {
		add(time.Duration(i)*time.Minute, &ok, 10*i, "") // last hour: 9 x 2xx, 10..90 ms
	}
	add(30*time.Minute, &bad, 1000, "HTTP 503")    // last hour: one 503
	add(5*time.Hour, nil, 5000, "connect refused") // day only: a timeout-like failure
	add(25*time.Hour, &bad, 9000, "too old")       // neither
	hs, err := f.svc.Health(ctx, hook.Operator, "app_A", "ep_A", now)
	if err != nil {
		t.Fatal(err)
	}
	h, d := hs[0], hs[1]
	if h.Window != "1h" || h.Attempts != 10 || h.Succeeded != 9 || h.SuccessRate != 0.9 || h.P50MS != 55 || h.LastError == nil ||
		h.LastError.Error != "HTTP 503" || *h.LastError.StatusCode != 503 {
		t.Fatalf("1h: %+v (last error %+v)", h, h.LastError)
	}
	if d.Window != "24h" || d.Attempts != 11 || d.Succeeded != 9 || d.P99MS < 1000 || d.P99MS > 5000 || d.LastError.Error != "HTTP 503" {
		t.Fatalf("24h: %+v", d)
	}
	if _, err := f.svc.Health(ctx, hook.Scope{AppID: "app_B"}, "app_A", "ep_A", now); !errors.Is(err, hook.ErrNotFound) {
		t.Fatalf("another app's key: %v", err)
	}
	empty, err := f.svc.Health(ctx, hook.Operator, "app_B", "ep_B", now)
	if err != nil || empty[0].Attempts != 0 || empty[0].SuccessRate != 1 || empty[0].LastError != nil {
		t.Fatalf("no attempts: %+v %v", empty, err)
	}
}
