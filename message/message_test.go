package message

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
)

type fixture struct {
	svc        *Service
	s          *testing.T
	appA, appB string
	epA, epB   string
	ids        []string // appA's messages, oldest first (block 100+i)
	base       time.Time
	jobs       func() []map[string]string
}

// newFixture: app A (member usr_1) with 10 messages on epA, blocks 100..109,
// created one minute apart; app B with 3 messages on epB.
func newFixture(t *testing.T) *fixture {
	pool := testenv.PG(t)
	rdb, prefix := testenv.Redis(t)
	keys := hook.Keys{Prefix: prefix}
	f := &fixture{svc: New(pool, rdb, keys), s: t, appA: "app_A", appB: "app_B", epA: "ep_A", epB: "ep_B",
		base: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`INSERT INTO users (id, email, password_hash, role) VALUES ('usr_1', 'a@x', 'x', 'member'), ('usr_2', 'b@x', 'x', 'member')`)
	exec(`INSERT INTO applications (id, name) VALUES ('app_A', 'A'), ('app_B', 'B')`)
	exec(`INSERT INTO application_members (app_id, user_id) VALUES ('app_A', 'usr_1')`)
	exec(`INSERT INTO endpoints (id, app_id, url, secret_enc) VALUES ('ep_A', 'app_A', 'https://a.example', '\x00'), ('ep_B', 'app_B', 'https://b.example', '\x00')`)
	statesA := []string{"succeeded", "succeeded", "dead", "failed", "succeeded", "dead", "pending", "succeeded", "dead", "delivering"}
	for i, st := range statesA {
		id := fmt.Sprintf("msg_A%02d", i)
		f.ids = append(f.ids, id)
		exec(`WITH m AS (INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, tx_hash, payload, created_at)
			VALUES ($1, 'app_A', 'ep_A', $2, 'log', $2, 1, $3, $4, '{"n": 1}', $6) RETURNING *)
			INSERT INTO message_states (id, app_id, endpoint_id, state, attempts, created_at, type, block_number, log_index, fifo_key)
			SELECT id, app_id, endpoint_id, $5, 2, created_at, type, block_number, log_index, fifo_key FROM m`,
			id, fmt.Sprintf("1:0xa:%d", i), 100+i, fmt.Sprintf("0xt%d", i%3), st, f.base.Add(time.Duration(i)*time.Minute))
	}
	for i := 0; i < 3; i++ {
		exec(`WITH m AS (INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload, created_at)
			VALUES ($1, 'app_B', 'ep_B', $2, 'log', $2, 1, $3, '{}', $4) RETURNING *)
			INSERT INTO message_states (id, app_id, endpoint_id, state, attempts, created_at, type, block_number, log_index, fifo_key)
			SELECT id, app_id, endpoint_id, 'dead', 0, created_at, type, block_number, log_index, fifo_key FROM m`,
			fmt.Sprintf("msg_B%02d", i), fmt.Sprintf("1:0xb:%d", i), 100+i, f.base.Add(time.Duration(i)*time.Minute))
	}
	exec(`INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt, status_code, error_class, error, response_excerpt, latency_ms)
		VALUES ('msg_A02', 'ep_A', 'app_A', 1, 500, 'http_5xx', 'HTTP 500', 'oops', 12), ('msg_A02', 'ep_A', 'app_A', 2, NULL, 'timeout', 'deadline', '', 15000)`)
	f.jobs = func() []map[string]string {
		entries, err := rdb.Do(ctx, rdb.B().Xrange().Key(keys.DeliverJobs()).Start("-").End("+").Build()).AsXRange()
		if err != nil {
			t.Fatal(err)
		}
		out := []map[string]string{}
		for _, e := range entries {
			out = append(out, e.FieldValues)
		}
		return out
	}
	return f
}

func ids(p Page) []string {
	out := []string{}
	for _, m := range p.Messages {
		out = append(out, m.ID)
	}
	return out
}

func TestListIsScopedToWhatTheCallerMaySee(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cases := []struct {
		name  string
		scope hook.Scope
		want  int
	}{
		{"admin", hook.Scope{Admin: true}, 13},
		{"member", hook.Scope{UserID: "usr_1"}, 10},
		{"non-member", hook.Scope{UserID: "usr_2"}, 0},
		{"api key", hook.Scope{AppID: "app_B"}, 3},
		{"nobody", hook.Scope{}, 0},
	}
	for _, c := range cases {
		p, err := f.svc.List(ctx, c.scope, Filter{Limit: 100})
		if err != nil || len(p.Messages) != c.want {
			t.Errorf("%s: %d messages, err %v; want %d", c.name, len(p.Messages), err, c.want)
		}
	}
	if _, _, err := f.svc.Get(ctx, hook.Scope{AppID: "app_B"}, "msg_A00"); !errors.Is(err, hook.ErrNotFound) {
		t.Errorf("Get out of scope: %v, want ErrNotFound", err)
	}
	if _, _, err := f.svc.Get(ctx, hook.Scope{UserID: "usr_2"}, "msg_A00"); !errors.Is(err, hook.ErrNotFound) {
		t.Errorf("Get by non-member: %v, want ErrNotFound", err)
	}
	if _, err := f.svc.Replay(ctx, hook.Scope{AppID: "app_B"}, "msg_A02"); !errors.Is(err, hook.ErrNotFound) {
		t.Errorf("Replay out of scope: %v, want ErrNotFound", err)
	}
	from := int64(0)
	if _, err := f.svc.ReplayRange(ctx, hook.Scope{UserID: "usr_2"}, Range{EndpointID: "ep_A", FromBlock: &from}); !errors.Is(err, hook.ErrNotFound) {
		t.Errorf("ReplayRange out of scope: %v, want ErrNotFound", err)
	}
	if got := f.jobs(); len(got) != 0 {
		t.Errorf("out-of-scope calls queued %d jobs", len(got))
	}
}

func TestListFiltersAndPaginatesWithCursor(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := hook.Operator
	var all []string
	cursor := ""
	for pages := 0; ; pages++ {
		p, err := f.svc.List(ctx, admin, Filter{EndpointID: "ep_A", Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ids(p)...)
		if p.NextCursor == "" {
			if pages != 3 {
				t.Fatalf("10 messages in pages of 3 took %d pages", pages+1)
			}
			break
		}
		cursor = p.NextCursor
	}
	if len(all) != 10 || all[0] != "msg_A09" || all[9] != "msg_A00" {
		t.Fatalf("paged listing %v, want msg_A09..msg_A00", all)
	}
	lo, hi := int64(102), int64(105)
	check := func(name string, fl Filter, want ...string) {
		t.Helper()
		p, err := f.svc.List(ctx, admin, fl)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fmt.Sprint(ids(p)) != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v", name, ids(p), want)
		}
	}
	check("state", Filter{EndpointID: "ep_A", State: "dead"}, "msg_A08", "msg_A05", "msg_A02")
	check("event", Filter{EventID: "1:0xa:4"}, "msg_A04")
	check("tx", Filter{TxHash: "0xT1", AppID: "app_A"}, "msg_A07", "msg_A04", "msg_A01")
	check("blocks", Filter{AppID: "app_A", FromBlock: &lo, ToBlock: &hi}, "msg_A05", "msg_A04", "msg_A03", "msg_A02")
	check("time", Filter{AppID: "app_A", Since: f.base.Add(8 * time.Minute), Until: f.base.Add(10 * time.Minute)}, "msg_A09", "msg_A08")
	if _, err := f.svc.List(ctx, admin, Filter{State: "weird"}); !isField(err, "state") {
		t.Errorf("bad state: %v", err)
	}
	if _, err := f.svc.List(ctx, admin, Filter{Cursor: "!!"}); !isField(err, "cursor") {
		t.Errorf("bad cursor: %v", err)
	}
}

func TestGetReturnsPayloadAndAttempts(t *testing.T) {
	f := newFixture(t)
	m, atts, err := f.svc.Get(context.Background(), hook.Scope{UserID: "usr_1"}, "msg_A02")
	if err != nil {
		t.Fatal(err)
	}
	if m.State != "dead" || string(m.Payload) != `{"n": 1}` || m.WebhookID != "1:0xa:2" {
		t.Fatalf("message %+v", m)
	}
	if len(atts) != 2 || atts[0].Attempt != 1 || *atts[0].StatusCode != 500 || atts[0].ResponseExcerpt != "oops" ||
		atts[1].StatusCode != nil || atts[1].ErrorClass != "timeout" || atts[1].LatencyMS != 15000 {
		t.Fatalf("attempts %+v", atts)
	}
}

func TestReplayKeepsWebhookIDAndQueuesAJob(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	m, err := f.svc.Replay(ctx, hook.Scope{AppID: "app_A"}, "msg_A02")
	if err != nil {
		t.Fatal(err)
	}
	if m.State != "pending" || m.WebhookID != "1:0xa:2" || m.Attempts != 2 {
		t.Fatalf("replayed message %+v", m)
	}
	jobs := f.jobs()
	if len(jobs) != 1 || jobs[0]["message_id"] != "msg_A02" || jobs[0]["endpoint_id"] != "ep_A" {
		t.Fatalf("jobs %v", jobs)
	}
	if _, err := f.svc.Replay(ctx, hook.Operator, "msg_A09"); !errors.Is(err, hook.ErrConflict) {
		t.Fatalf("replaying an in-flight message: %v, want ErrConflict", err)
	}
	if _, err := f.svc.Replay(ctx, hook.Operator, "msg_nope"); !errors.Is(err, hook.ErrNotFound) {
		t.Fatalf("replaying a missing message: %v", err)
	}
}

func TestReplayRangeByTimeAndBlockOptionallyOnlyFailed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Time range minutes 0..5 (A00..A05), failed or dead only: A02 dead, A03 failed, A05 dead.
	n, err := f.svc.ReplayRange(ctx, hook.Scope{UserID: "usr_1"}, Range{EndpointID: "ep_A", Since: f.base, Until: f.base.Add(6 * time.Minute), OnlyFailed: true})
	if err != nil || n != 3 {
		t.Fatalf("time range only failed: %d, %v; want 3", n, err)
	}
	replayed := map[string]bool{}
	for _, j := range f.jobs() {
		replayed[j["message_id"]] = true
	}
	if !replayed["msg_A02"] || !replayed["msg_A03"] || !replayed["msg_A05"] || len(replayed) != 3 {
		t.Fatalf("replayed %v", replayed)
	}
	// Blocks 106..109, every finished message: A07 succeeded, A08 dead (A06 pending, A09 delivering left alone).
	lo, hi := int64(106), int64(109)
	n, err = f.svc.ReplayRange(ctx, hook.Operator, Range{EndpointID: "ep_A", FromBlock: &lo, ToBlock: &hi})
	if err != nil || n != 2 {
		t.Fatalf("block range: %d, %v; want 2", n, err)
	}
	p, _ := f.svc.List(ctx, hook.Operator, Filter{EndpointID: "ep_A", State: "pending"})
	if fmt.Sprint(ids(p)) != "[msg_A08 msg_A07 msg_A06 msg_A05 msg_A03 msg_A02]" {
		t.Fatalf("pending after replays: %v", ids(p))
	}
	if _, err := f.svc.ReplayRange(ctx, hook.Operator, Range{EndpointID: "ep_A"}); !isField(err, "since") {
		t.Fatalf("unbounded range: %v, want a field error on since", err)
	}
}

// isField reports whether err is hook.FieldErrors naming field.
func isField(err error, field string) bool {
	var fe hook.FieldErrors
	return errors.As(err, &fe) && fe[field] != ""
}

// A deleted endpoint's messages are gone for readers at once, though the
// retention role's purge deletes them later (migration 00090): listing,
// getting and replaying one finds nothing, and the application's other
// endpoints' messages still show.
func TestMessagesOfADeletedEndpointAreGoneBeforeTheirPurge(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.svc.pool.Exec(ctx, `INSERT INTO endpoints (id, app_id, url, secret_enc) VALUES ('ep_A2', 'app_A', 'https://a.example', '\x00');
		UPDATE messages SET endpoint_id = 'ep_A2' WHERE id = 'msg_A09';
		UPDATE message_states SET endpoint_id = 'ep_A2' WHERE id = 'msg_A09';
		DELETE FROM endpoints WHERE id = 'ep_A'`); err != nil {
		t.Fatal(err)
	}
	var kept int
	if err := f.svc.pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE endpoint_id = 'ep_A'`).Scan(&kept); err != nil || kept != 9 {
		t.Fatalf("%d messages of ep_A kept (%v), want its 9 (until the purge)", kept, err)
	}
	p, err := f.svc.List(ctx, hook.Operator, Filter{AppID: "app_A", Limit: 100})
	if err != nil || !slices.Equal(ids(p), []string{"msg_A09"}) {
		t.Errorf("list of app_A: %v, %v; want only msg_A09 of the endpoint left", ids(p), err)
	}
	if _, _, err := f.svc.Get(ctx, hook.Operator, "msg_A00"); !errors.Is(err, hook.ErrNotFound) {
		t.Errorf("get a message of the deleted endpoint: %v, want ErrNotFound", err)
	}
	if _, err := f.svc.Replay(ctx, hook.Operator, "msg_A02"); !errors.Is(err, hook.ErrNotFound) {
		t.Errorf("replay a message of the deleted endpoint: %v, want ErrNotFound", err)
	}
}
