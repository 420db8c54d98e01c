//go:build browser

package ui

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/modules/admin"
	"github.com/ethhook/ethhook/modules/deliver"
	"github.com/ethhook/ethhook/seal"
	"github.com/ethhook/ethhook/tenant"
)

// stack is the admin module with the UI mounted on its router (as the
// binary does), the endpoint service, and the deliver module sending real
// signed webhooks to a local receiver.
type stack struct {
	t        *testing.T
	pool     *pgxpool.Pool
	rdb      rueidis.Client
	keys     hook.Keys
	store    *tenant.Store
	srv      *httptest.Server
	receiver *receiver
	eps      *endpoint.Service
}

// receiver is the customer's webhook server.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []http.Header
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func newStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{t: t, pool: testenv.PG(t)}
	s.rdb, s.keys.Prefix = testenv.Redis(t)
	s.store = tenant.New(s.pool)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))

	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	box, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Redis.Prefix = s.keys.Prefix
	cfg.Delivery.AllowCIDRs = []string{"127.0.0.0/8", "::1/128"}
	cfg.Delivery.SweepInterval = 500 * time.Millisecond
	devnet, _ := config.Builtin("devnet")
	chains := []config.Chain{devnet}

	s.eps = endpoint.New(s.pool, box, s.rdb, s.keys, chains)
	ac := config.DefaultAdmin()
	ac.JWTSecret = strings.Repeat("s", 40)
	am, err := admin.New(admin.Options{Config: ac, Pool: s.pool, Redis: s.rdb, Keys: s.keys, Chains: chains, Log: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	u, err := New(Deps{
		Pool: s.pool, Redis: s.rdb, Keys: s.keys, Tenant: am.Store(), Chains: chains, Log: log,
		Endpoints: EndpointsFrom(s.eps, time.Hour, nil),
		Messages:  &sqlMessages{pool: s.pool, rdb: s.rdb, keys: s.keys},
	})
	if err != nil {
		t.Fatal(err)
	}
	u.Routes(am.Echo())
	s.srv = httptest.NewServer(am.Handler())
	t.Cleanup(s.srv.Close)

	dm, err := deliver.New(cfg, s.pool, s.rdb, box, "browser-test", log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dm.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("deliver: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("deliver did not stop")
		}
	})

	s.receiver = &receiver{}
	s.receiver.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		s.receiver.mu.Lock()
		s.receiver.got = append(s.receiver.got, r.Header.Clone())
		s.receiver.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(s.receiver.srv.Close)
	return s
}

// emit makes n messages for endpoint epID the way process does (a pending
// messages row, then a job on the delivery stream), each for one devnet
// ERC-20 Transfer log. The process module is not in the tree yet, so the
// test stands in for it here; deliver, the UI and the browser are real.
func (s *stack) emit(ctx context.Context, appID, epID string, n int, firstBlock uint64) []string {
	s.t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		block := firstBlock + uint64(i)
		bh := fmt.Sprintf("0x%064x", block*7919)
		ev := hook.Event{
			ID: hook.EventID(config.DevnetChainID, bh, 0), Type: hook.TypeLog,
			Chain:       hook.Chain{ID: config.DevnetChainID, Name: "devnet"},
			Block:       hook.Block{Number: block, Hash: bh, Timestamp: uint64(time.Now().Unix())},
			Transaction: hook.Transaction{Hash: fmt.Sprintf("0x%064x", block*104729), Index: 0},
			Log: hook.Log{Address: "0x5fbdb2315678afecb367f032d93f642f64180aa3", Index: 0, Data: "0x" + fmt.Sprintf("%064x", 1000000+i),
				Topics: []string{"0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
					"0x000000000000000000000000" + strings.Repeat("a", 40), "0x000000000000000000000000" + strings.Repeat("b", 40)}},
		}
		payload, _ := json.Marshal(map[string]any{
			"id": ev.ID, "type": ev.Type, "api_version": "1", "chain": ev.Chain,
			"block":       map[string]any{"number": ev.Block.Number, "hash": ev.Block.Hash, "timestamp": ev.Block.Timestamp},
			"transaction": ev.Transaction, "log": ev.Log,
			"decoded": map[string]any{"name": "Transfer", "signature": "Transfer(address,address,uint256)",
				"args": map[string]any{"from": "0x" + strings.Repeat("a", 40), "to": "0x" + strings.Repeat("b", 40), "value": fmt.Sprint(1000000 + i)}},
			"confirmations": 0, "endpoint_id": epID,
		})
		id := "msg_" + ulid.Make().String()
		if _, err := s.pool.Exec(ctx, `INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, block_hash, tx_hash, payload, state)
			VALUES ($1, $2, $3, $4, 'log', $4, $5, $6, $7, $8, $9, 'pending')`,
			id, appID, epID, ev.ID, config.DevnetChainID, block, bh, ev.Transaction.Hash, payload); err != nil {
			s.t.Fatal(err)
		}
		if err := s.rdb.Do(ctx, s.rdb.B().Xadd().Key(s.keys.DeliverJobs()).Id("*").FieldValue().
			FieldValue("message_id", id).FieldValue("endpoint_id", epID).Build()).Error(); err != nil {
			s.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// sqlMessages serves the delivery pages from the messages and
// delivery_history tables until package message lands (then the binary
// passes an adapter of message's service instead).
type sqlMessages struct {
	pool *pgxpool.Pool
	rdb  rueidis.Client
	keys hook.Keys
}

const msgCols = `id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, block_hash, tx_hash, payload,
	state, attempts, next_attempt_at, last_status, last_error, created_at, updated_at`

func scanMsg(r pgx.Row) (Message, error) {
	var m Message
	err := r.Scan(&m.ID, &m.AppID, &m.EndpointID, &m.EventID, &m.Type, &m.WebhookID, &m.ChainID, &m.BlockNumber, &m.BlockHash,
		&m.TxHash, &m.Payload, &m.State, &m.Attempts, &m.NextAttemptAt, &m.LastStatus, &m.LastError, &m.CreatedAt, &m.UpdatedAt)
	return m, err
}

func (s *sqlMessages) List(ctx context.Context, scope hook.Scope, appID string, f MessageFilter, cursor string, limit int) ([]Message, string, error) {
	if err := tenant.Visible(ctx, s.pool, scope, appID); err != nil {
		return nil, "", err
	}
	args := []any{appID}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	q := `SELECT ` + msgCols + ` FROM messages WHERE app_id = $1`
	if f.EndpointID != "" {
		q += ` AND endpoint_id = ` + arg(f.EndpointID)
	}
	if f.State != "" {
		q += ` AND state = ` + arg(f.State)
	}
	if cursor != "" {
		q += ` AND id < ` + arg(cursor)
	}
	q += ` ORDER BY id DESC LIMIT ` + arg(limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", err
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) { return scanMsg(r) })
	next := ""
	if len(ms) > limit {
		ms = ms[:limit]
		next = ms[limit-1].ID
	}
	return ms, next, err
}

func (s *sqlMessages) Get(ctx context.Context, scope hook.Scope, appID, id string) (Message, []Attempt, error) {
	if err := tenant.Visible(ctx, s.pool, scope, appID); err != nil {
		return Message{}, nil, err
	}
	m, err := scanMsg(s.pool.QueryRow(ctx, `SELECT `+msgCols+` FROM messages WHERE id = $1 AND app_id = $2`, id, appID))
	if errors.Is(err, pgx.ErrNoRows) {
		return m, nil, hook.ErrNotFound
	}
	if err != nil {
		return m, nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT attempt, status_code, error_class, error, request_headers, response_headers, response_excerpt, latency_ms, created_at
		FROM delivery_history WHERE message_id = $1 ORDER BY attempt DESC, id DESC`, id)
	if err != nil {
		return m, nil, err
	}
	at, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Attempt, error) {
		var a Attempt
		err := r.Scan(&a.Attempt, &a.StatusCode, &a.ErrorClass, &a.Error, &a.RequestHeaders, &a.ResponseHeaders, &a.ResponseExcerpt, &a.LatencyMS, &a.CreatedAt)
		return a, err
	})
	return m, at, err
}

func (s *sqlMessages) Replay(ctx context.Context, scope hook.Scope, appID, id string) error {
	if err := tenant.Visible(ctx, s.pool, scope, appID); err != nil {
		return err
	}
	var ep string
	err := s.pool.QueryRow(ctx, `UPDATE messages SET state = 'pending', retry_base = attempts, next_attempt_at = NULL, updated_at = now()
		WHERE id = $1 AND app_id = $2 AND state IN ('succeeded', 'failed', 'dead') RETURNING endpoint_id`, id, appID).Scan(&ep)
	if errors.Is(err, pgx.ErrNoRows) {
		return hook.ErrNotFound
	}
	if err != nil {
		return err
	}
	return s.rdb.Do(ctx, s.rdb.B().Xadd().Key(s.keys.DeliverJobs()).Id("*").FieldValue().
		FieldValue("message_id", id).FieldValue("endpoint_id", ep).Build()).Error()
}

func (s *sqlMessages) ReplayRange(ctx context.Context, scope hook.Scope, appID string, r ReplayRange) (int, error) {
	return 0, errors.New("replaying a range needs package message")
}
