package process

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/decode"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/seal"
	"github.com/ethhook/ethhook/tenant"
)

const testChain = 31337

var transferTopic = decode.TopicOf("Transfer(address,address,uint256)")

type env struct {
	t      testing.TB
	pool   *pgxpool.Pool
	rdb    rueidis.Client
	keys   hook.Keys
	cfg    config.Config
	svc    *endpoint.Service
	app    string
	chains []config.Chain
}

func newEnv(t testing.TB) *env {
	t.Helper()
	pool := testenv.PG(t)
	rdb, prefix := testenv.Redis(t)
	box, err := seal.New([]byte(strings.Repeat("s", 32)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Redis.Prefix = prefix
	cfg.Process.Consumer = "test-" + randHex(4)
	cfg.Process.ClaimIdle = time.Second
	cfg.Process.BlockTimeout = 100 * time.Millisecond
	cfg.Process.ReleaseInterval = 50 * time.Millisecond
	if w := os.Getenv("PROCESS_WORKERS"); w != "" {
		fmt.Sscan(w, &cfg.Process.Workers)
	}
	if w := os.Getenv("PROCESS_READ"); w != "" {
		fmt.Sscan(w, &cfg.Process.ReadCount)
	}
	keys := hook.Keys{Prefix: prefix}
	e := &env{t: t, pool: pool, rdb: rdb, keys: keys, cfg: cfg, svc: endpoint.New(pool, box, rdb, keys, nil),
		chains: []config.Chain{{Name: "devnet", ID: testChain}}}
	ctx := context.Background()
	a, err := tenant.New(pool).CreateApplication(ctx, hook.Operator, "test", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO plans (id, name, monthly_quota, max_endpoints) VALUES ('unlimited', 'U', 0, 0) ON CONFLICT DO NOTHING`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE applications SET plan_id = 'unlimited' WHERE id = $1`, a.ID); err != nil {
		t.Fatal(err)
	}
	e.app = a.ID
	return e
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// running is a started module.
type running struct {
	m      *Module
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error
}

func (e *env) start(mut ...func(*Module)) *running {
	e.t.Helper()
	lg := zap.NewNop()
	if os.Getenv("PROCESS_DEBUG") != "" {
		lg, _ = zap.NewDevelopment()
	}
	m, err := New(module.Deps{Config: e.cfg, Pool: e.pool, Redis: e.rdb, Log: lg, Registerer: prometheus.NewRegistry()}, Options{Chains: e.chains})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range mut {
		f(m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{m: m, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = m.Run(ctx)
		close(r.done)
	}()
	e.eventually("module ready", m.Ready)
	e.t.Cleanup(r.stop)
	return r
}

func (r *running) stop() {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		panic("process module did not stop within 30s of its context ending")
	}
}

func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) endpoint(in endpoint.Input) hook.Endpoint {
	e.t.Helper()
	if in.URL == "" {
		in.URL = "https://receiver.example/hook"
	}
	if in.Filter.Chains == nil {
		in.Filter.Chains = []uint64{testChain}
	}
	if in.Confirmations == nil {
		zero := 0
		in.Confirmations = &zero
	}
	ep, _, err := e.svc.Create(context.Background(), hook.Operator, e.app, in)
	if err != nil {
		e.t.Fatal(err)
	}
	return ep
}

func addrWord(a string) string { return "0x000000000000000000000000" + strings.TrimPrefix(a, "0x") }

func blockHash(branch string, n uint64) string {
	return "0x" + fmt.Sprintf("%s%062x", branch, n)[:64]
}

// transfer builds an ERC-20 Transfer log event.
func transfer(branch string, block uint64, idx uint, token, from, to string, value int64) hook.Event {
	bh := blockHash(branch, block)
	return hook.Event{
		ID: hook.EventID(testChain, bh, idx), Type: hook.TypeLog,
		Chain:       hook.Chain{ID: testChain, Name: "devnet"},
		Block:       hook.Block{Number: block, Hash: bh, Timestamp: 1700000000 + block},
		Transaction: hook.Transaction{Hash: "0x" + fmt.Sprintf("%064x", block*1000+uint64(idx)), Index: idx},
		Log: hook.Log{Address: token, Topics: []string{transferTopic, addrWord(from), addrWord(to)},
			Data: "0x" + hex.EncodeToString(common.BigToHash(big.NewInt(value)).Bytes()), Index: idx},
	}
}

func removed(ev hook.Event) hook.Event {
	ev.Type = hook.TypeLogRemoved
	return ev
}

func (e *env) publish(evs ...hook.Event) {
	e.t.Helper()
	cmds := make(rueidis.Commands, 0, len(evs))
	for _, ev := range evs {
		f, err := ev.Fields()
		if err != nil {
			e.t.Fatal(err)
		}
		cmds = append(cmds, e.rdb.B().Xadd().Key(e.keys.Events(ev.Chain.ID)).Id("*").FieldValue().
			FieldValue("id", f["id"]).FieldValue("type", f["type"]).FieldValue("event", f["event"]).Build())
	}
	for _, r := range e.rdb.DoMulti(context.Background(), cmds...) {
		if err := r.Error(); err != nil {
			e.t.Fatal(err)
		}
	}
}

type message struct {
	ID, EndpointID, EventID, Type, WebhookID, State string
	Payload                                         []byte
}

func (e *env) messages(endpointID string) []message {
	e.t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT m.id, m.endpoint_id, m.event_id, m.type, m.webhook_id, s.state, m.payload::text
		FROM messages m JOIN message_states s ON s.id = m.id
		WHERE m.endpoint_id = $1 OR $1 = '' ORDER BY m.block_number, m.event_id, m.type`, endpointID)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []message
	for rows.Next() {
		var m message
		var p string
		if err := rows.Scan(&m.ID, &m.EndpointID, &m.EventID, &m.Type, &m.WebhookID, &m.State, &p); err != nil {
			e.t.Fatal(err)
		}
		m.Payload = []byte(p)
		out = append(out, m)
	}
	return out
}

func (e *env) count(endpointID string) int {
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE endpoint_id = $1 OR $1 = ''`, endpointID).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// jobs returns message_id -> how many delivery jobs name it.
func (e *env) jobs() map[string]int {
	e.t.Helper()
	entries, err := e.rdb.Do(context.Background(), e.rdb.B().Xrange().Key(e.keys.DeliverJobs()).Start("-").End("+").Build()).AsXRange()
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int{}
	for _, en := range entries {
		out[en.FieldValues["message_id"]]++
	}
	return out
}

// pending is how many stream entries the group has not acknowledged.
func (e *env) pending() int64 {
	res, err := e.rdb.Do(context.Background(), e.rdb.B().Xpending().Key(e.keys.Events(testChain)).Group(Group).Build()).ToArray()
	if err != nil || len(res) == 0 {
		return -1
	}
	n, _ := res[0].AsInt64()
	return n
}

// streamLen is the number of entries in the chain's stream.
func (e *env) lastDelivered() (lag int64, pending int64) {
	groups, err := e.rdb.Do(context.Background(), e.rdb.B().XinfoGroups().Key(e.keys.Events(testChain)).Build()).ToArray()
	if err != nil {
		return -1, -1
	}
	for _, g := range groups {
		info, _ := g.AsMap()
		lm, pm := info["lag"], info["pending"]
		lag, _ = lm.AsInt64()
		pending, _ = pm.AsInt64()
		return lag, pending
	}
	return -1, -1
}

// drained reports whether every published entry was read and acknowledged.
func (e *env) drained() bool {
	lag, pending := e.lastDelivered()
	return lag == 0 && pending == 0
}
