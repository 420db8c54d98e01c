package msgstate

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
)

type fixture struct {
	t    testing.TB
	pool *pgxpool.Pool
	ctx  context.Context
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{t: t, pool: testenv.PG(t), ctx: context.Background()}
	f.exec(`INSERT INTO applications (id, name) VALUES ('app_A', 'A')`)
	f.exec(`INSERT INTO endpoints (id, app_id, url, secret_enc) VALUES ('ep_A', 'app_A', 'https://a.example', '\x00')`)
	return f
}

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.pool.Exec(f.ctx, sql, args...); err != nil {
		f.t.Fatal(err)
	}
}

// insert makes messages msg_1.. of ep_A in state.
func (f *fixture) insert(state string, ids ...string) {
	f.t.Helper()
	f.insertOf(state, ids, func(int) (string, string) { return "ep_A", "" })
}

// insertOf makes messages ids in state, message i of endpoint and FIFO key
// (or "") of(i).
func (f *fixture) insertOf(state string, ids []string, of func(i int) (endpoint, fifoKey string)) {
	f.t.Helper()
	rows := MakeRows(len(ids))
	for i, id := range ids {
		ep, key := of(i)
		rows.IDs[i], rows.AppIDs[i], rows.EndpointIDs[i], rows.EventIDs[i] = id, "app_A", ep, "1:0xb:"+id
		rows.Types[i], rows.WebhookIDs[i], rows.ChainIDs[i], rows.BlockNumbers[i] = "log", "1:0xb:"+id, 1, int64(i)
		rows.Payloads[i], rows.States[i], rows.FIFOKeys[i] = `{"n":1}`, state, key
	}
	got, err := Insert(f.ctx, f.pool, &rows, true)
	if err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for got.Next() {
		n++
	}
	if got.Close(); got.Err() != nil || n != len(ids) {
		f.t.Fatalf("inserted %d of %d: %v", n, len(ids), got.Err())
	}
}

// state is id's state and lease owner ("" for none).
func (f *fixture) state(id string) (string, string) {
	f.t.Helper()
	var st string
	var owner *string
	if err := f.pool.QueryRow(f.ctx, `SELECT state, lease_owner FROM message_states WHERE id = $1`, id).Scan(&st, &owner); err != nil {
		f.t.Fatal(err)
	}
	if owner == nil {
		return st, ""
	}
	return st, *owner
}

func (f *fixture) want(id, state, owner string) {
	f.t.Helper()
	if st, o := f.state(id); st != state || o != owner {
		f.t.Fatalf("%s is %s leased to %q, want %s leased to %q", id, st, o, state, owner)
	}
}

func TestLeaseHolderFinishesAndOthersCannot(t *testing.T) {
	f := newFixture(t)
	f.insert(hook.StatePending, "msg_1", "msg_2")
	now := time.Now()
	a := Lease{Owner: "a", Until: now.Add(time.Minute), Now: now}
	got, err := Claim(f.ctx, f.pool, []string{"msg_1", "msg_2"}, a)
	if err != nil || len(got) != 2 {
		t.Fatalf("claim: %v, %v", got, err)
	}
	f.want("msg_1", hook.StateDelivering, "a")
	// A second claim while the lease runs finds nothing.
	if got, err := Claim(f.ctx, f.pool, []string{"msg_1"}, Lease{Owner: "b", Until: now.Add(time.Minute), Now: now}); err != nil || len(got) != 0 {
		t.Fatalf("claim of a leased message: %v, %v", got, err)
	}
	// Another owner can neither renew nor finish a's messages.
	if ids, err := Renew(f.ctx, f.pool, "b", []string{"msg_1"}, now.Add(time.Hour)); err != nil || len(ids) != 0 {
		t.Fatalf("renew by b: %v, %v", ids, err)
	}
	status := int32(200)
	done := &Results{IDs: []string{"msg_1"}, States: []string{hook.StateSucceeded}, Attempts: []int32{1},
		Statuses: []*int32{&status}, Errors: []string{""}, Nexts: []*time.Time{nil}}
	if n, err := Finish(f.ctx, f.pool, "b", done); err != nil || n != 0 {
		t.Fatalf("finish by b: %d recorded, %v", n, err)
	}
	f.want("msg_1", hook.StateDelivering, "a")
	if n, err := Finish(f.ctx, f.pool, "a", done); err != nil || n != 1 {
		t.Fatalf("finish by a: %d recorded, %v", n, err)
	}
	f.want("msg_1", hook.StateSucceeded, "")
	// msg_2 goes back to pending when a hands it back.
	if jobs, err := HandBack(f.ctx, f.pool, "a", nil); err != nil || len(jobs) != 1 || jobs[0] != (hook.Job{MessageID: "msg_2", EndpointID: "ep_A"}) {
		t.Fatalf("hand back: %v, %v", jobs, err)
	}
	f.want("msg_2", hook.StatePending, "")
}

func TestExpiredLeaseIsClaimedAgainAndDeadOwnerReclaimed(t *testing.T) {
	f := newFixture(t)
	f.insert(hook.StatePending, "msg_1", "msg_2")
	now := time.Now()
	if _, err := Claim(f.ctx, f.pool, []string{"msg_1", "msg_2"}, Lease{Owner: "a", Until: now.Add(time.Second), Now: now}); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Minute)
	got, _, err := Pull(f.ctx, f.pool, "ep_A", 10, Lease{Owner: "b", Until: later.Add(time.Minute), Now: later}, PullCursor{})
	if err != nil || len(got) != 0 {
		t.Fatalf("pull takes pending and due messages only: %v, %v", got, err)
	}
	got, err = Claim(f.ctx, f.pool, []string{"msg_1"}, Lease{Owner: "b", Until: later.Add(time.Minute), Now: later})
	if err != nil || len(got) != 1 {
		t.Fatalf("claim of an expired lease: %v, %v", got, err)
	}
	f.want("msg_1", hook.StateDelivering, "b")
	// a is dead: msg_2 (which it was sending) goes back with one attempt more.
	jobs, err := Reclaim(f.ctx, f.pool, "a", []string{"msg_2"}, "interrupted")
	if err != nil || len(jobs) != 1 || jobs[0].MessageID != "msg_2" {
		t.Fatalf("reclaim: %v, %v", jobs, err)
	}
	var attempts int
	var lastErr string
	if err := f.pool.QueryRow(f.ctx, `SELECT attempts, last_error FROM message_states WHERE id = 'msg_2'`).Scan(&attempts, &lastErr); err != nil {
		t.Fatal(err)
	}
	if attempts != 1 || lastErr != "interrupted" {
		t.Fatalf("reclaimed: attempts %d, last_error %q", attempts, lastErr)
	}
	f.want("msg_2", hook.StatePending, "")
	f.want("msg_1", hook.StateDelivering, "b")
}

func TestReleaseAndReplay(t *testing.T) {
	f := newFixture(t)
	f.insert(hook.StateQuotaExceeded, "msg_1", "msg_2", "msg_3")
	jobs, err := Release(f.ctx, f.pool, "app_A", 2)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("release: %v, %v", jobs, err)
	}
	f.want("msg_3", hook.StateQuotaExceeded, "")
	// A held message is not replayed; a dead one is.
	if ok, err := Replay(f.ctx, f.pool, "msg_3"); err != nil || ok {
		t.Fatalf("replay of a held message: %v, %v", ok, err)
	}
	f.exec(`UPDATE message_states SET state = 'dead', attempts = 3 WHERE id IN ('msg_1', 'msg_2')`)
	if ok, err := Replay(f.ctx, f.pool, "msg_1"); err != nil || !ok {
		t.Fatalf("replay of a dead message: %v, %v", ok, err)
	}
	f.want("msg_1", hook.StatePending, "")
	from := int64(1)
	ids, err := ReplayRange(f.ctx, f.pool, Range{EndpointID: "ep_A", MinID: "msg_", FromBlock: &from, OnlyFailed: true})
	if err != nil || len(ids) != 1 || ids[0] != "msg_2" {
		t.Fatalf("replay range: %v, %v", ids, err)
	}
	var base int
	if err := f.pool.QueryRow(f.ctx, `SELECT retry_base FROM message_states WHERE id = 'msg_2'`).Scan(&base); err != nil || base != 3 {
		t.Fatalf("retry_base %d, %v: want a fresh schedule from attempt 3", base, err)
	}
}

// Inserting writes the message once and its state beside it; a duplicate
// in one batch or an existing id is skipped in both tables.
func TestInsertWritesMessageAndStateOnce(t *testing.T) {
	f := newFixture(t)
	f.insert(hook.StatePending, "msg_1")
	rows := MakeRows(2)
	for i := range 2 { // msg_1 again, and msg_2 twice in one batch
		id := []string{"msg_1", "msg_2"}[i]
		rows.IDs[i], rows.AppIDs[i], rows.EndpointIDs[i], rows.EventIDs[i] = id, "app_A", "ep_A", "1:0xb:"+id
		rows.Types[i], rows.WebhookIDs[i], rows.ChainIDs[i], rows.Payloads[i], rows.States[i] = "log", id, 1, `{}`, hook.StatePending
	}
	rows.IDs = append(rows.IDs, "msg_2")
	for _, a := range []*[]string{&rows.AppIDs, &rows.EndpointIDs, &rows.EventIDs, &rows.Types, &rows.WebhookIDs, &rows.BlockHashes,
		&rows.TxHashes, &rows.Payloads, &rows.States, &rows.FIFOKeys} {
		*a = append(*a, (*a)[1])
	}
	rows.ChainIDs, rows.BlockNumbers, rows.LogIndexes = append(rows.ChainIDs, 1), append(rows.BlockNumbers, 0), append(rows.LogIndexes, 0)
	got, err := Insert(f.ctx, f.pool, &rows, true)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for got.Next() {
		n++
	}
	if got.Close(); got.Err() != nil || n != 1 {
		t.Fatalf("inserted %d (%v), want 1 (msg_2)", n, got.Err())
	}
	var ms, ss int
	if err := f.pool.QueryRow(f.ctx, `SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM message_states)`).Scan(&ms, &ss); err != nil || ms != 2 || ss != 2 {
		t.Fatalf("%d messages, %d states (%v), want 2 and 2", ms, ss, err)
	}
}

// Deleting an endpoint deletes its messages by cascade; Forget then
// deletes its waiting and held states (message_states has no foreign key),
// and leaves other endpoints' states alone.
func TestForgetDeletesWaitingStatesOfADeletedEndpoint(t *testing.T) {
	f := newFixture(t)
	f.exec(`INSERT INTO endpoints (id, app_id, url, secret_enc) VALUES ('ep_B', 'app_A', 'https://b.example', '\x00')`)
	f.insert(hook.StatePending, "msg_1")
	f.insert(hook.StateQuotaExceeded, "msg_2")
	f.insert(hook.StateFailed, "msg_3")
	rows := MakeRows(1)
	rows.IDs[0], rows.AppIDs[0], rows.EndpointIDs[0], rows.EventIDs[0] = "msg_9", "app_A", "ep_B", "1:0xb:9"
	rows.Types[0], rows.WebhookIDs[0], rows.ChainIDs[0], rows.Payloads[0], rows.States[0] = "log", "w", 1, `{}`, hook.StatePending
	got, err := Insert(f.ctx, f.pool, &rows, true)
	if err != nil {
		t.Fatal(err)
	}
	got.Close()
	f.exec(`DELETE FROM endpoints WHERE id = 'ep_A'`)
	if err := Forget(f.ctx, f.pool, "app_A", []string{"ep_A"}); err != nil {
		t.Fatal(err)
	}
	var left []string
	r, err := f.pool.Query(f.ctx, `SELECT id FROM message_states ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var id string
		r.Scan(&id)
		left = append(left, id)
	}
	if len(left) != 1 || left[0] != "msg_9" {
		t.Fatalf("states left %v, want [msg_9]", left)
	}
}

// A pull from a cursor takes pending messages after it, oldest first, and
// says where they end; a due retry is taken whatever the cursor and does
// not move it; a message made pending again behind the cursor waits for a
// pull from the oldest.
func TestPullGoesOnFromItsCursor(t *testing.T) {
	f := newFixture(t)
	f.insert(hook.StatePending, "msg_1", "msg_2", "msg_3", "msg_4", "msg_5") // one created_at: ordered by id
	now := time.Now()
	l := Lease{Owner: "a", Until: now.Add(time.Minute), Now: now}
	ids := func(cs []Claimed) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		slices.Sort(out)
		return out
	}
	got, at, err := Pull(f.ctx, f.pool, "ep_A", 2, l, PullCursor{})
	if err != nil || !slices.Equal(ids(got), []string{"msg_1", "msg_2"}) || at.ID != "msg_2" {
		t.Fatalf("first pull: %v, cursor %+v, %v", ids(got), at, err)
	}
	// msg_1 fails with its retry due, msg_2 goes back to pending (handed back).
	f.exec(`UPDATE message_states SET state = 'failed', next_attempt_at = now() - interval '1 second', lease_owner = NULL WHERE id = 'msg_1'`)
	f.exec(`UPDATE message_states SET state = 'pending', lease_owner = NULL WHERE id = 'msg_2'`)
	got, at, err = Pull(f.ctx, f.pool, "ep_A", 3, l, at)
	if err != nil || !slices.Equal(ids(got), []string{"msg_1", "msg_3", "msg_4"}) || at.ID != "msg_4" {
		t.Fatalf("pull from the cursor: %v, cursor %+v, %v", ids(got), at, err)
	}
	got, at2, err := Pull(f.ctx, f.pool, "ep_A", 3, l, at)
	if err != nil || !slices.Equal(ids(got), []string{"msg_5"}) || at2.ID != "msg_5" {
		t.Fatalf("pull to the end: %v, cursor %+v, %v", ids(got), at2, err)
	}
	got, at3, err := Pull(f.ctx, f.pool, "ep_A", 3, l, PullCursor{})
	if err != nil || !slices.Equal(ids(got), []string{"msg_2"}) || at3.ID != "msg_2" {
		t.Fatalf("pull from the oldest: %v, cursor %+v, %v", ids(got), at3, err)
	}
	got, at4, err := Pull(f.ctx, f.pool, "ep_A", 3, l, at3)
	if err != nil || len(got) != 0 || at4 != at3 {
		t.Fatalf("nothing left: %v, cursor %+v, %v", ids(got), at4, err)
	}
}
