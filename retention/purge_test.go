package retention_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"

	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/msgstate"
	"github.com/ethhook/ethhook/retention"
)

// history gives endpoint ep n messages made now (100 a block, payloads of
// about 250 bytes), each with its state (succeeded, or pending for
// every tenth) and one attempt.
func history(t testing.TB, pool *pgxpool.Pool, ep string, n int) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, block_hash, tx_hash, payload)
			SELECT 'msg_' || $1 || '_' || i, 'app_r', $1, 'e' || i, 'log', 'e' || i, 1, i / 100, md5((i / 100)::text), md5(i::text),
				('{"log":{"data":"0x' || repeat('00', 96) || '"}}')::json
			FROM generate_series(1, $2) i`,
		`INSERT INTO message_states (id, app_id, endpoint_id, state, type)
			SELECT 'msg_' || $1 || '_' || i, 'app_r', $1, CASE WHEN i % 10 = 0 THEN 'pending' ELSE 'succeeded' END, 'log'
			FROM generate_series(1, $2) i`,
		`INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt)
			SELECT 'msg_' || $1 || '_' || i, $1, 'app_r', 1 FROM generate_series(1, $2) i`,
	} {
		if _, err := pool.Exec(ctx, q, ep, n); err != nil {
			t.Fatal(err)
		}
	}
}

// rowsOf counts endpoint ep's messages, states and attempts.
func rowsOf(t testing.TB, pool *pgxpool.Pool, ep string) [3]int {
	t.Helper()
	return [3]int{
		count(t, pool, `SELECT count(*) FROM messages WHERE endpoint_id = $1`, ep),
		count(t, pool, `SELECT count(*) FROM message_states WHERE endpoint_id = $1`, ep),
		count(t, pool, `SELECT count(*) FROM delivery_history WHERE endpoint_id = $1`, ep),
	}
}

// A deleted endpoint's history goes a batch of PurgeBatch messages at a
// time, with their states and attempts, including a message inserted after
// the delete (an insert whose snapshot came before it), then its holds and
// an attempt whose message was already gone; another endpoint's stays. The
// purge entry outlives the delete by PurgeGrace, then a pass that finds
// nothing drops it. While another process holds the purge lock, a pass
// does nothing.
func TestPurgeDeletesADeletedEndpointsHistoryInBatches(t *testing.T) {
	pool := setup(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO endpoints (id, app_id, url, secret_enc) VALUES ('ep_k', 'app_r', 'http://x.test/', '\x00')`); err != nil {
		t.Fatal(err)
	}
	n := 2*retention.PurgeBatch + 7
	history(t, pool, "ep_r", n)
	history(t, pool, "ep_k", 20)
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM endpoints WHERE id = 'ep_r'`); err != nil {
			return err
		}
		return msgstate.Forget(ctx, tx, "app_r", []string{"ep_r"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rowsOf(t, pool, "ep_r"), [3]int{n, n - n/10, n}; got != want {
		t.Fatalf("after the delete: messages, states, attempts %v, want %v (the waiting states gone)", got, want)
	}
	history(t, pool, "ep_late", 1)
	if _, err := pool.Exec(ctx, `UPDATE messages SET endpoint_id = 'ep_r' WHERE endpoint_id = 'ep_late';
		UPDATE message_states SET endpoint_id = 'ep_r' WHERE endpoint_id = 'ep_late';
		UPDATE delivery_history SET endpoint_id = 'ep_r' WHERE endpoint_id = 'ep_late';
		INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt) VALUES ('msg_gone', 'ep_r', 'app_r', 1);
		INSERT INTO process_holds (endpoint_id, event_id, app_id, chain_id, block_number, release_block, state)
			SELECT ep, 'h' || i, 'app_r', 1, i, i + 12, 'held' FROM unnest('{ep_r,ep_k}'::text[]) ep, generate_series(1, 3) i`); err != nil {
		t.Fatal(err)
	}

	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_xact_lock(1886545765) -- purgeLock, "prge"`); err != nil {
		t.Fatal(err)
	}
	if got, err := retention.PurgeDeleted(ctx, pool, time.Now()); err != nil || got != 0 {
		t.Errorf("pass while another process purges: %d rows, %v; want 0", got, err)
	}
	holder.Rollback(ctx)

	passes := testenv.Purge(t, pool, time.Now())
	// Three batches of messages (the last with the late one), then the
	// holds, then the attempt left without a message.
	if want := []int64{retention.PurgeBatch, retention.PurgeBatch, 8, 3, 1}; !slices.Equal(passes, want) {
		t.Errorf("passes deleted %v, want %v", passes, want)
	}
	if got := count(t, pool, `SELECT count(*) FROM process_holds WHERE endpoint_id = 'ep_k'`); got != 3 {
		t.Errorf("the other endpoint's holds: %d, want 3", got)
	}
	if got := rowsOf(t, pool, "ep_r"); got != [3]int{} {
		t.Errorf("deleted endpoint after the purge: messages, states, attempts %v, want none", got)
	}
	if got, want := rowsOf(t, pool, "ep_k"), [3]int{20, 20, 20}; got != want {
		t.Errorf("the other endpoint: messages, states, attempts %v, want %v", got, want)
	}
	queued := func() int { return count(t, pool, `SELECT count(*) FROM endpoint_purges WHERE endpoint_id = 'ep_r'`) }
	if queued() != 1 {
		t.Errorf("purge entry gone within the grace")
	}
	if _, err := retention.PurgeDeleted(ctx, pool, time.Now().Add(retention.PurgeGrace+time.Second)); err != nil {
		t.Fatal(err)
	}
	if queued() != 0 {
		t.Errorf("purge entry still there after the grace")
	}
}

// BenchmarkDeleteEndpointWithHistory deletes an endpoint with
// ETHHOOK_BENCH_ROWS messages (300,000 by default; each with its state
// and one attempt) as the API does, on two databases in turn: one with
// the foreign keys of messages and holds to endpoints put back and the
// old delete (the cascade, then the waiting states and every attempt in
// the same transaction), one as shipped (the waiting states, then the
// purge a batch at a time). It reports how long each delete's transaction
// ran, how long an insert of a block with a message for that endpoint and
// one for another, started 10 ms into the delete, took and whether it
// failed, and, for the purge, the time to delete everything (its batches
// back to back, without the module's pause between them) and its longest
// batch:
//
//	go test -run '^$' -bench DeleteEndpointWithHistory -benchtime 1x ./retention/
func BenchmarkDeleteEndpointWithHistory(b *testing.B) {
	rows := 300_000
	if n, err := strconv.Atoi(os.Getenv("ETHHOOK_BENCH_ROWS")); err == nil && n > 0 {
		rows = n
	}
	ctx := context.Background()
	var cascade, forget, purge, longest, waitBefore, waitAfter time.Duration
	failed := map[bool]int{}
	for range b.N {
		for _, old := range []bool{true, false} {
			b.StopTimer()
			pool := setup(b)
			history(b, pool, "ep_r", rows)
			if old {
				for _, q := range []string{
					`ALTER TABLE messages ADD CONSTRAINT messages_endpoint_id_fkey FOREIGN KEY (endpoint_id) REFERENCES endpoints (id) ON DELETE CASCADE`,
					`ALTER TABLE process_holds ADD CONSTRAINT process_holds_endpoint_id_fkey FOREIGN KEY (endpoint_id) REFERENCES endpoints (id) ON DELETE CASCADE`,
				} {
					if _, err := pool.Exec(ctx, q); err != nil {
						b.Fatal(err)
					}
				}
			}
			if _, err := pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
				b.Fatal(err)
			}
			if _, err := pool.Exec(ctx, `INSERT INTO endpoints (id, app_id, url, secret_enc) VALUES ('ep_k', 'app_r', 'http://x.test/', '\x00')`); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := time.Now()
			inserted := make(chan error, 1)
			go func() { // process's insert of a block with a message for each endpoint, 10 ms into the delete
				time.Sleep(10 * time.Millisecond)
				t0 := time.Now()
				err := insertBlock(ctx, pool)
				if old {
					waitBefore += time.Since(t0)
				} else {
					waitAfter += time.Since(t0)
				}
				inserted <- err
			}()
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `DELETE FROM endpoints WHERE id = 'ep_r'`); err != nil {
					return err
				}
				if old { // msgstate.Forget before 00090
					_, err := tx.Exec(ctx, `DELETE FROM message_states WHERE endpoint_id = 'ep_r' AND state IN ('pending', 'delivering', 'failed') AND app_id = 'app_r';
						DELETE FROM delivery_history WHERE endpoint_id = 'ep_r' AND app_id = 'app_r'`)
					return err
				}
				return msgstate.Forget(ctx, tx, "app_r", []string{"ep_r"})
			})
			if err != nil {
				b.Fatal(err)
			}
			took := time.Since(start)
			if err := <-inserted; err != nil {
				failed[old]++
			}
			if old {
				cascade += took
				continue
			}
			forget += took
			start = time.Now()
			for {
				t0 := time.Now()
				n, err := retention.PurgeDeleted(ctx, pool, time.Now())
				if err != nil {
					b.Fatal(err)
				}
				longest = max(longest, time.Since(t0))
				if n == 0 {
					break
				}
			}
			purge += time.Since(start)
		}
	}
	per := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(b.N) }
	b.ReportMetric(per(cascade), "before_delete_ms")
	b.ReportMetric(per(forget), "delete_ms")
	b.ReportMetric(per(purge), "purge_ms")
	b.ReportMetric(float64(longest.Milliseconds()), "longest_purge_tx_ms")
	b.ReportMetric(per(waitBefore), "before_insert_ms")
	b.ReportMetric(float64(failed[true]), "before_inserts_failed")
	b.ReportMetric(per(waitAfter), "insert_ms")
	b.ReportMetric(float64(failed[false]), "inserts_failed")
}

// insertBlock inserts a message for ep_r and one for ep_k as process does
// (msgstate.Insert, in a transaction).
func insertBlock(ctx context.Context, pool *pgxpool.Pool) error {
	rows := msgstate.MakeRows(2)
	for i, ep := range []string{"ep_r", "ep_k"} {
		rows.IDs[i], rows.AppIDs[i], rows.EndpointIDs[i], rows.EventIDs[i] = "msg_"+ulid.Make().String(), "app_r", ep, "late"
		rows.Types[i], rows.WebhookIDs[i], rows.ChainIDs[i], rows.Payloads[i], rows.States[i] = "log", "late", 1, `{}`, "pending"
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		got, err := msgstate.Insert(ctx, tx, &rows, true)
		if err != nil {
			return err
		}
		got.Close()
		return got.Err()
	})
}
