package ui

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"go.uber.org/zap/zaptest"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/message"
	"github.com/ethhook/ethhook/modules/admin"
	"github.com/ethhook/ethhook/seal"
	"github.com/ethhook/ethhook/tenant"
)

// services are the real endpoint and message services and the admin
// module (for its test-event sender) behind a harness's UI.
type services struct {
	pool *pgxpool.Pool
	rdb  rueidis.Client
	keys hook.Keys
	eps  *endpoint.Service
	msgs *message.Service
}

func newServicesHarness(t *testing.T) (*harness, *services) {
	t.Helper()
	s := &services{}
	h := newHarnessWith(t, func(d *module.Deps, o *Options) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			t.Fatal(err)
		}
		box, err := seal.New(key)
		if err != nil {
			t.Fatal(err)
		}
		s.pool, s.rdb, s.keys = d.Pool, d.Redis, d.Keys()
		ac := config.DefaultAdmin()
		ac.JWTSecret = strings.Repeat("j", 40)
		am, err := admin.New(module.Deps{Config: config.Config{Admin: ac, Redis: d.Config.Redis, Chains: d.Config.Chains},
			Pool: d.Pool, Redis: d.Redis, Box: box, Log: zaptest.NewLogger(t), Registerer: prometheus.NewRegistry()}, admin.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// The UI runs on the admin module's own services, as in app/ui.go.
		o.Tenant, s.eps, s.msgs = am.Store(), am.Endpoints(), am.Messages()
		o.Endpoints, o.Messages, o.SendTest, o.RotateOverlap = s.eps, s.msgs, am.SendTest, time.Hour
	})
	return h, s
}

func (s *services) endpoint(t *testing.T, appID string) hook.Endpoint {
	t.Helper()
	ep, _, err := s.eps.Create(context.Background(), hook.Operator, appID, endpoint.Input{
		URL: "https://receiver.example.com/" + appID, Filter: hook.Filter{Chains: []uint64{config.DevnetChainID}}})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// message inserts a message row in state at block; payload carries marker.
func (s *services) message(t *testing.T, appID, epID, state string, block int64, marker string) string {
	t.Helper()
	id := "msg_" + ulid.Make().String()
	evID := fmt.Sprintf("evt_%d_%s", block, id)
	if _, err := s.pool.Exec(context.Background(), `WITH m AS (INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id,
		block_number, payload) VALUES ($1, $2, $3, $4, 'log', $4, 31337, $5, $6) RETURNING *)
		INSERT INTO message_states (id, app_id, endpoint_id, state, attempts, created_at, type, block_number, log_index, fifo_key)
		SELECT id, app_id, endpoint_id, $7, 0, created_at, type, block_number, log_index, fifo_key FROM m`,
		id, appID, epID, evID, block, fmt.Sprintf(`{"marker": %q}`, marker), state); err != nil {
		t.Fatal(err)
	}
	return id
}

func (s *services) attempt(t *testing.T, msgID, appID, epID string, n, status int) {
	t.Helper()
	if _, err := s.pool.Exec(context.Background(), `INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt, status_code,
		request_headers, created_at) VALUES ($1, $2, $3, $4, $5, $7, now() + make_interval(secs => $6::int))`,
		msgID, epID, appID, n, status, n, fmt.Sprintf(`{"webhook-id": "wh_%d"}`, n)); err != nil {
		t.Fatal(err)
	}
}

func (s *services) state(t *testing.T, id string) string {
	t.Helper()
	var st string
	if err := s.pool.QueryRow(context.Background(), `SELECT state FROM message_states WHERE id = $1`, id).Scan(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func (s *services) jobs(t *testing.T) int64 {
	t.Helper()
	n, err := s.rdb.Do(context.Background(), s.rdb.B().Xlen().Key(s.keys.DeliverJobs()).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDeliveryPagesTreatAnotherApplicationsMessageAsNotFoundEvenForAnAdmin(t *testing.T) {
	h, s := newServicesHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	a, b := h.app("Alpha"), h.app("Beta")
	h.user("member@example.com", tenant.RoleMember, a.ID)
	epA, epB := s.endpoint(t, a.ID), s.endpoint(t, b.ID)
	mA := s.message(t, a.ID, epA.ID, hook.StateSucceeded, 10, "alpha-payload")
	mB := s.message(t, b.ID, epB.ID, hook.StateSucceeded, 10, "beta-payload")

	c := h.client()
	c.login("admin@example.com")
	resp, body := c.get("/apps/" + a.ID + "/messages")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, mA) || strings.Contains(body, mB) {
		t.Fatalf("Alpha's deliveries should list %s and not Beta's %s:\n%s", mA, mB, body)
	}
	resp, body = c.get("/apps/" + a.ID + "/messages/" + mB)
	wantStatus(t, resp, body, http.StatusNotFound)
	if strings.Contains(body, "beta-payload") {
		t.Fatal("Beta's payload shown under Alpha")
	}
	resp, body = c.post("/apps/"+a.ID+"/messages/"+mB+"/replay", nil)
	wantStatus(t, resp, body, http.StatusNotFound)
	resp, body = c.post("/apps/"+a.ID+"/replay", url.Values{"endpoint": {epB.ID}, "from_block": {"0"}})
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	if !strings.Contains(body, "no such endpoint in this application") {
		t.Fatalf("range replay of another application's endpoint:\n%s", body)
	}
	if st := s.state(t, mB); st != hook.StateSucceeded {
		t.Fatalf("Beta's message was replayed from Alpha's pages: state %s", st)
	}
	if n := s.jobs(t); n != 0 {
		t.Fatalf("%d delivery jobs queued, want none", n)
	}
	// Directly, too: the service the pages call narrows to the application.
	if _, _, err := s.msgs.GetIn(context.Background(), hook.Operator, a.ID, mB); !errors.Is(err, hook.ErrNotFound) {
		t.Fatalf("Get of Beta's message as Alpha: %v, want not found", err)
	}
	if _, _, err := s.msgs.GetIn(context.Background(), hook.Scope{AppID: b.ID}, a.ID, mA); !errors.Is(err, hook.ErrNotFound) {
		t.Fatalf("Beta's API key reading Alpha's message: %v, want not found", err)
	}

	m := h.client()
	m.login("member@example.com")
	resp, body = m.get("/apps/" + b.ID + "/messages/" + mB)
	wantStatus(t, resp, body, http.StatusNotFound)
	if _, _, err := s.msgs.GetIn(context.Background(), hook.Scope{UserID: "usr_nobody"}, a.ID, mA); !errors.Is(err, hook.ErrNotFound) {
		t.Fatalf("a stranger reading Alpha's message: %v, want not found", err)
	}
}

func TestMessagePageShowsAttemptsNewestFirstAndReplayQueuesADeliveryJob(t *testing.T) {
	h, s := newServicesHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	a := h.app("Alpha")
	ep := s.endpoint(t, a.ID)
	id := s.message(t, a.ID, ep.ID, hook.StateSucceeded, 42, "the-payload")
	s.attempt(t, id, a.ID, ep.ID, 1, 500)
	s.attempt(t, id, a.ID, ep.ID, 2, 200)

	m, atts, err := s.msgs.GetIn(context.Background(), hook.Operator, a.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	if m.BlockNumber != 42 || m.ChainID != 31337 || len(atts) != 2 || atts[0].Attempt != 1 || atts[1].Attempt != 2 ||
		atts[1].RequestHeaders["webhook-id"] != "wh_2" {
		t.Fatalf("message %+v attempts %+v: want block 42 and attempts 1 and 2 with their headers", m, atts)
	}

	c := h.client()
	c.login("admin@example.com")
	resp, body := c.get("/apps/" + a.ID + "/messages/" + id)
	wantStatus(t, resp, body, http.StatusOK)
	i2, i1 := strings.Index(body, "Attempt 2"), strings.Index(body, "Attempt 1")
	if i2 < 0 || i1 < 0 || i2 > i1 || !strings.Contains(body, "HTTP 500") || !strings.Contains(body, "the-payload") {
		t.Fatalf("message page: want attempt 2 above attempt 1, HTTP 500 and the payload:\n%s", body)
	}
	resp, body = c.post("/apps/"+a.ID+"/messages/"+id+"/replay", nil)
	wantStatus(t, resp, body, http.StatusSeeOther)
	if st := s.state(t, id); st != hook.StatePending {
		t.Fatalf("after replay the message is %s, want pending", st)
	}
	if n := s.jobs(t); n != 1 {
		t.Fatalf("%d delivery jobs after one replay, want 1", n)
	}

	busy := s.message(t, a.ID, ep.ID, hook.StateDelivering, 43, "busy")
	resp, body = c.post("/apps/"+a.ID+"/messages/"+busy+"/replay", nil)
	wantStatus(t, resp, body, http.StatusConflict)
	if !strings.Contains(body, "cannot be replayed now") {
		t.Fatalf("replaying a message in flight:\n%s", body)
	}
}

func TestReplayRangeFormReplaysTheEndpointsFinishedMessagesFromABlock(t *testing.T) {
	h, s := newServicesHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	a := h.app("Alpha")
	ep, other := s.endpoint(t, a.ID), s.endpoint(t, a.ID)
	old := s.message(t, a.ID, ep.ID, hook.StateSucceeded, 10, "")
	ok := s.message(t, a.ID, ep.ID, hook.StateSucceeded, 11, "")
	dead := s.message(t, a.ID, ep.ID, hook.StateDead, 12, "")
	pending := s.message(t, a.ID, ep.ID, hook.StatePending, 13, "")
	otherEP := s.message(t, a.ID, other.ID, hook.StateSucceeded, 12, "")

	c := h.client()
	c.login("admin@example.com")
	resp, body := c.post("/apps/"+a.ID+"/replay", url.Values{"endpoint": {ep.ID}, "from_block": {"11"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	_, body = c.get(resp.Header.Get("Location"))
	if !strings.Contains(body, "Replay queued for 2 messages.") {
		t.Fatalf("after a range replay:\n%s", body)
	}
	for id, want := range map[string]string{old: hook.StateSucceeded, ok: hook.StatePending, dead: hook.StatePending,
		pending: hook.StatePending, otherEP: hook.StateSucceeded} {
		if st := s.state(t, id); st != want {
			t.Errorf("message %s is %s, want %s", id, st, want)
		}
	}
	if n := s.jobs(t); n != 2 {
		t.Fatalf("%d delivery jobs, want 2", n)
	}

	// Only failed ones, by block range: nothing finished and failed is left.
	resp, body = c.post("/apps/"+a.ID+"/replay", url.Values{"endpoint": {ep.ID}, "from_block": {"0"}, "only_failed": {"on"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	_, body = c.get(resp.Header.Get("Location"))
	if !strings.Contains(body, "Replay queued for 0 messages.") {
		t.Fatalf("after an only-failed range replay:\n%s", body)
	}
	resp, body = c.post("/apps/"+a.ID+"/replay", url.Values{"endpoint": {ep.ID}})
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	if !strings.Contains(body, "give a start time or a start block") {
		t.Fatalf("range replay without a start:\n%s", body)
	}
}

func TestSendTestEventButtonQueuesATestMessageForTheEndpoint(t *testing.T) {
	h, s := newServicesHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	a, b := h.app("Alpha"), h.app("Beta")
	h.user("member@example.com", tenant.RoleMember, b.ID)
	ep := s.endpoint(t, a.ID)

	c := h.client()
	c.login("admin@example.com")
	resp, body := c.get("/apps/" + a.ID + "/endpoints/" + ep.ID)
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "Send test event") {
		t.Fatalf("endpoint page has no test button:\n%s", body)
	}
	resp, body = c.post("/apps/"+a.ID+"/endpoints/"+ep.ID+"/test", nil)
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "Test event queued as") {
		t.Fatalf("test result:\n%s", body)
	}
	var id, typ, state, appID string
	if err := s.pool.QueryRow(context.Background(), `SELECT id, type, state, app_id FROM message_states WHERE endpoint_id = $1`, ep.ID).
		Scan(&id, &typ, &state, &appID); err != nil {
		t.Fatal(err)
	}
	if typ != "test" || state != hook.StatePending || appID != a.ID || !strings.Contains(body, id) {
		t.Fatalf("test message %s type %s state %s app %s; result:\n%s", id, typ, state, appID, body)
	}
	if n := s.jobs(t); n != 1 {
		t.Fatalf("%d delivery jobs, want 1", n)
	}
	// It shows in the delivery list like any message.
	_, body = c.get("/apps/" + a.ID + "/messages")
	if !strings.Contains(body, id) {
		t.Fatalf("the test message is not in the delivery list:\n%s", body)
	}

	m := h.client()
	m.login("member@example.com")
	resp, body = m.post("/apps/"+a.ID+"/endpoints/"+ep.ID+"/test", nil)
	wantStatus(t, resp, body, http.StatusNotFound)
	resp, body = m.post("/apps/"+b.ID+"/endpoints/"+ep.ID+"/test", nil)
	wantStatus(t, resp, body, http.StatusNotFound)
	if n := s.jobs(t); n != 1 {
		t.Fatalf("a member of another application queued a test event: %d jobs", n)
	}
}
