package msgstate

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
)

// The writes that name their messages by id (Claim, Finish, Renew) must find them
// by the primary key, not through the waiting index, whatever the planner
// believes of that index.
// Every message goes through message_states_waiting twice (pending, then
// delivering) and leaves two dead entries there until vacuum; with
// statistics that say few messages are delivering, a plan that reads every
// delivering entry of that index (state is its second column, so the whole
// index) and hashes them looked cheaper than a thousand key lookups: a
// result write then cost the size of the waiting index, dead entries and
// every endpoint's backlog included, instead of the size of its batch
// (28-39 ms instead of 10-16 ms for 1,000 results on a database that had
// delivered 1.2 M messages). Both plan modes are checked: pgx prepares the
// statements, and Postgres may keep re-planning them (custom) or not.
func TestWritesOfMessagesByIDUseThePrimaryKey(t *testing.T) {
	f := newFixture(t)
	newIDs := func(n int) []string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = "msg_" + ulid.Make().String()
		}
		return ids
	}
	deliver := func(ids []string) {
		f.insert(hook.StatePending, ids...)
		now := time.Now()
		claimed, err := Claim(f.ctx, f.pool, ids, Lease{Owner: "p", Until: now.Add(time.Minute), Now: now})
		if err != nil || len(claimed) != len(ids) {
			t.Fatalf("claimed %d of %d: %v", len(claimed), len(ids), err)
		}
	}
	finishAll := func(ids []string) {
		r := &Results{}
		for _, id := range ids {
			r.IDs, r.States, r.Attempts = append(r.IDs, id), append(r.States, hook.StateSucceeded), append(r.Attempts, 1)
			r.Statuses, r.Errors, r.Nexts = append(r.Statuses, nil), append(r.Errors, ""), append(r.Nexts, nil)
		}
		if n, err := Finish(f.ctx, f.pool, "p", r); err != nil || n != int64(len(ids)) {
			t.Fatalf("finished %d of %d: %v", n, len(ids), err)
		}
	}
	// A database that has delivered: dead entries in the waiting index,
	// statistics with nothing delivering.
	for range 5 {
		ids := newIDs(1000)
		deliver(ids)
		finishAll(ids)
	}
	f.exec(`ANALYZE message_states`)
	live := newIDs(100)
	deliver(live)
	fresh := newIDs(100)
	f.insert(hook.StatePending, fresh...)
	var part string
	if err := f.pool.QueryRow(f.ctx, `SELECT tableoid::regclass::text FROM message_states WHERE id = $1`, live[0]).Scan(&part); err != nil {
		t.Fatal(err)
	}

	r := &Results{}
	for _, id := range live {
		r.IDs, r.States, r.Attempts = append(r.IDs, id), append(r.States, hook.StateSucceeded), append(r.Attempts, 1)
		r.Statuses, r.Errors, r.Nexts = append(r.Statuses, nil), append(r.Errors, ""), append(r.Nexts, nil)
	}
	writes := []struct {
		name string
		sql  string
		args []any
	}{
		{"Finish", finishSQL, finishArgs("p", r)},
		{"Renew", renewSQL, []any{"p", time.Now().Add(time.Minute), live}},
		{"Claim", claimSQL, claimArgs(fresh, Lease{Owner: "p", Until: time.Now().Add(time.Minute), Now: time.Now()})},
	}
	conn, err := f.pool.Acquire(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		if _, err := conn.Exec(f.ctx, "SET plan_cache_mode = "+mode); err != nil {
			t.Fatal(err)
		}
		for _, w := range writes {
			var out []byte
			if err := conn.QueryRow(f.ctx, "EXPLAIN (FORMAT JSON) "+w.sql, w.args...).Scan(&out); err != nil {
				t.Fatalf("%s: %v", w.name, err)
			}
			// A sequential scan of this small partition is fair: the
			// planner knows a partition's size, not the waiting index's
			// live share.
			for _, n := range testenv.ParsePlan(t, out).All() {
				if strings.HasPrefix(n.Index, part+"_") && !strings.HasSuffix(n.Index, "_pkey") {
					t.Errorf("%s (%s) reads %s by %s %s, not by its primary key:\n%s", w.name, mode, part, n.Type, n.Index, out)
				}
			}
		}
	}
}

// The pins against sequential scans (Finish's seqScansOff, the lease
// writes' leasePin): a partition analyzed while nearly empty and filled
// since (a new one taking thousands a second before autovacuum analyzes it
// again) made the by-id plans nested loops over sequential scans, a scan of
// the partition per message: for Finish and Pull, of message_states. The test
// makes that shape with the rows in tomorrow's partitions, checks that
// Finish and Pull reproduce it without their pins (else the test proves
// nothing), and that with its pin no write scans those partitions.
func TestStateWritesKeepToThePrimaryKeyOnStaleStatistics(t *testing.T) {
	f := newFixture(t)
	tomorrow := time.Now().Add(24 * time.Hour)
	newIDs := func(n int) []string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = "msg_" + ulid.MustNew(ulid.Timestamp(tomorrow), ulid.DefaultEntropy()).String()
		}
		return ids
	}
	f.insert(hook.StatePending, newIDs(10)...)
	f.exec(`ANALYZE messages`)
	f.exec(`ANALYZE message_states`)
	for range 20 {
		f.insert(hook.StatePending, newIDs(1000)...)
	}
	claimable := newIDs(100)
	f.insert(hook.StatePending, claimable...)
	delivering := newIDs(100)
	f.insert(hook.StatePending, delivering...)
	now := time.Now()
	l := Lease{Owner: "p", Until: now.Add(time.Minute), Now: now}
	if _, err := Claim(f.ctx, f.pool, delivering, l); err != nil {
		t.Fatal(err)
	}
	r := &Results{}
	for _, id := range delivering {
		r.IDs, r.States, r.Attempts = append(r.IDs, id), append(r.States, hook.StateSucceeded), append(r.Attempts, 1)
		r.Statuses, r.Errors, r.Nexts = append(r.Statuses, nil), append(r.Errors, ""), append(r.Nexts, nil)
	}
	// The partitions that hold the rows (tomorrow's pair).
	var parts [2]string
	if err := f.pool.QueryRow(f.ctx, `SELECT (SELECT tableoid::regclass::text FROM messages WHERE id = $1),
			(SELECT tableoid::regclass::text FROM message_states WHERE id = $1)`, claimable[0]).Scan(&parts[0], &parts[1]); err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		name, sql string
		args      []any
		lease     bool // pinned by leasePin (else by seqScansOff)
		// Whether the unpinned plan scans a loaded partition here. Claim's
		// and Renew's did not (they scanned only the empty ones, harmless
		// while those stay empty); their pin is checked all the same.
		reproduces bool
	}{
		{"Finish", finishSQL, finishArgs("p", r), false, true},
		{"Pull", pullSQL, []any{"ep_A", 100, l.Owner, l.Now, l.Until, time.Unix(0, 0), ""}, true, true},
		{"Claim", claimSQL, claimArgs(claimable, l), true, false},
		{"Renew", renewSQL, []any{"p", now.Add(2 * time.Minute), delivering}, true, false},
	}
	for _, w := range writes {
		// scanned lists the loaded partitions the plan reads by sequential
		// scan, in a transaction with generic plans.
		scanned := func(pin bool) ([]string, string) {
			tx, err := f.pool.Begin(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback(f.ctx) }()
			if _, err := tx.Exec(f.ctx, "SET LOCAL plan_cache_mode = force_generic_plan"); err != nil {
				t.Fatal(err)
			}
			var out []byte
			switch {
			case pin && w.lease:
				// Through leaseQuery, as the writes run: the pin and the
				// statement in one batch.
				got, err := leaseQuery(f.ctx, tx, "EXPLAIN (FORMAT JSON) "+w.sql, w.args, pgx.RowTo[[]byte])
				if err != nil || len(got) != 1 {
					t.Fatalf("%s: explain: %v", w.name, err)
				}
				out = got[0]
				var sync string
				if err := tx.QueryRow(f.ctx, "SHOW synchronous_commit").Scan(&sync); err != nil || sync != "off" {
					t.Errorf("%s: synchronous_commit %q after its pin, want off (%v)", w.name, sync, err)
				}
			default:
				if pin {
					if _, err := tx.Exec(f.ctx, seqScansOff); err != nil {
						t.Fatal(err)
					}
				}
				if err := tx.QueryRow(f.ctx, "EXPLAIN (FORMAT JSON) "+w.sql, w.args...).Scan(&out); err != nil {
					t.Fatalf("%s: explain: %v", w.name, err)
				}
			}
			var seq []string
			for _, n := range testenv.ParsePlan(t, out).All() {
				if strings.HasPrefix(n.Type, "Seq Scan") && (n.Relation == parts[0] || n.Relation == parts[1]) {
					seq = append(seq, n.Relation)
				}
			}
			return seq, string(out)
		}
		if seq, out := scanned(false); w.reproduces && len(seq) == 0 {
			t.Errorf("%s: the stale statistics did not make it scan a partition without its pin: the test proves nothing\n%s", w.name, out)
		}
		if seq, out := scanned(true); len(seq) > 0 {
			t.Errorf("%s: with its pin it still scans %v:\n%s", w.name, seq, out)
		}
	}
}

// The lease writes look up endpoints by key (endpointOf) whatever the
// statistics of endpoints say. The shape that stalled a benchmark: the
// previous run's endpoints deleted and endpoints analyzed empty, then 100
// endpoints made, each with a backlog. A join with endpoints then read
// them in a loop around the statement's batch (a pull of 100 did 10,000
// lookups, 24 ms instead of 3) or hashed every endpoint.
func TestLeaseWritesLookUpEndpointsByKey(t *testing.T) {
	f := newFixture(t)
	f.exec(`DELETE FROM endpoints`)
	f.exec(`ANALYZE endpoints`)
	f.exec(`INSERT INTO endpoints (id, app_id, url, secret_enc, ordering)
		SELECT 'ep_' || i, 'app_A', 'https://a.example', '\x00', CASE WHEN i = 1 THEN 'fifo' ELSE 'parallel' END
		FROM generate_series(1, 100) i`)
	var ids []string
	for b := range 20 {
		batch := make([]string, 1000)
		for i := range batch {
			batch[i] = "msg_" + ulid.Make().String()
		}
		f.insertOf(hook.StatePending, batch, func(i int) (string, string) {
			if i%100 == 0 {
				return "ep_1", fmt.Sprintf("k%d", i/100%3)
			}
			return fmt.Sprintf("ep_%d", i%100+1), ""
		})
		ids = append(ids, batch...)
		if b == 0 {
			f.exec(`ANALYZE message_states`)
		}
	}
	now := time.Now()
	l := Lease{Owner: "p", Until: now.Add(time.Minute), Now: now}
	var parallel []string // a claim's batch: 100 messages of 99 endpoints
	for i := len(ids) - 100; i < len(ids); i++ {
		if i%100 != 0 {
			parallel = append(parallel, ids[i])
		}
	}
	writes := []struct {
		name, sql string
		args      []any
	}{
		{"Claim", claimSQL, claimArgs(parallel, l)},
		{"Pull", pullSQL, []any{"ep_7", 100, l.Owner, l.Now, l.Until, time.Unix(0, 0), ""}},
		{"PullOrdered", pullOrderedSQL, []any{"ep_1", []string{"k0", "k1", "k2"}, 100, l.Now, l.Owner, l.Until}},
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		for _, w := range writes {
			bad, lookups := f.explainLease(mode, w.sql, w.args).ReadsNotByKey("endpoints", "endpoints_pkey")
			if len(bad) > 0 || lookups > 100 {
				t.Errorf("%s (%s) reads endpoints %d times, %d of them not by key", w.name, mode, int(lookups), len(bad))
			}
		}
	}
}

// The lease writes read each claimed message's row by key (claimedMessage)
// whatever the statistics of messages say. The shape that stalled a
// benchmark: a run's messages deleted with its endpoints (a cascade) and
// messages analyzed then, with no rows left in pages that stay allocated,
// then the next run's messages inserted. A join of the claimed states with
// messages then read the whole partition once per claimed message (a full
// index scan standing in for the sequential scan the pin turns off): 5.6 M
// rows for a claim of 1,000, 9.4 s.
func TestLeaseWritesReadTheirMessagesByKey(t *testing.T) {
	f := newFixture(t)
	f.exec(`INSERT INTO endpoints (id, app_id, url, secret_enc, ordering) VALUES ('ep_F', 'app_A', 'https://a.example', '\x00', 'fifo')`)
	tomorrow := time.Now().Add(24 * time.Hour) // a partition of its own
	insert := func(n int) []string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = "msg_" + ulid.MustNew(ulid.Timestamp(tomorrow), ulid.DefaultEntropy()).String()
		}
		f.insertOf(hook.StatePending, ids, func(i int) (string, string) {
			if i%2 == 1 {
				return "ep_F", fmt.Sprintf("k%d", i%4)
			}
			return "ep_A", ""
		})
		return ids
	}
	insert(5000)
	f.exec(`DELETE FROM messages`)
	f.exec(`ANALYZE messages`)
	f.exec(`ANALYZE message_states`)
	ids := insert(5000)
	var part string
	if err := f.pool.QueryRow(f.ctx, `SELECT tableoid::regclass::text FROM messages WHERE id = $1`, ids[0]).Scan(&part); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	l := Lease{Owner: "p", Until: now.Add(time.Minute), Now: now}
	var parallel []string
	for i := 0; i < 2000; i += 2 {
		parallel = append(parallel, ids[i])
	}
	writes := []struct {
		name, sql string
		args      []any
	}{
		{"Claim", claimSQL, claimArgs(parallel, l)},
		{"Pull", pullSQL, []any{"ep_A", 1000, l.Owner, l.Now, l.Until, time.Unix(0, 0), ""}},
		{"PullOrdered", pullOrderedSQL, []any{"ep_F", []string{"k0", "k1", "k2", "k3"}, 1000, l.Now, l.Owner, l.Until}},
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		for _, w := range writes {
			bad, lookups := f.explainLease(mode, w.sql, w.args).ReadsNotByKey(part, part+"_pkey")
			if len(bad) > 0 || lookups > 1000 { // a claim of 1,000: one lookup each
				t.Errorf("%s (%s) reads %s %d times, %d of them not by key", w.name, mode, part, int(lookups), len(bad))
			}
		}
	}
}

// explainLease runs lease write sql as it runs (after leasePin) under
// EXPLAIN ANALYZE, in plan_cache_mode mode, rolled back, and returns its plan.
func (f *fixture) explainLease(mode, sql string, args []any) testenv.PlanNode {
	f.t.Helper()
	tx, err := f.pool.Begin(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(f.ctx) }()
	if _, err := tx.Exec(f.ctx, "SET LOCAL plan_cache_mode = "+mode); err != nil {
		f.t.Fatal(err)
	}
	got, err := leaseQuery(f.ctx, tx, "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args, pgx.RowTo[[]byte])
	if err != nil || len(got) != 1 {
		f.t.Fatalf("explain: %v", err)
	}
	return testenv.ParsePlan(f.t, got[0])
}
