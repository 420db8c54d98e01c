package msgstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
)

// BenchmarkLifecycle runs the writes every webhook makes, 1,000 messages a
// batch: Insert (pending), Claim (delivering), then as deliver's writer
// records a result, its attempt row (delivery_history, by COPY) and Finish
// (succeeded) in one transaction, on one connection, and reports the CPU
// time of the Postgres backend serving it (from /proc, so Postgres must be
// local) per 1,000 webhooks: inserted, delivered and logged. It isolates what the messages schema costs from the rest
// of the pipeline, so index changes can be compared on a busy machine:
//
//	go test -run '^$' -bench Lifecycle -benchtime 20x ./msgstate/
//
// ETHHOOK_BENCH_DOWN=n first rolls back the newest n migrations of the
// test database (1: the schema of 00086, one wide messages row written
// three times; 2: the indexes before 00086), so one binary measures both
// schemas, interleaved. Once 00087 is rolled back the round runs the
// statements of that schema (legacyInsertSQL and the rest, below) instead
// of this package's. ETHHOOK_BENCH_DDL runs statements after that
// (what-ifs: 'DROP INDEX messages_block').
func BenchmarkLifecycle(b *testing.B) {
	down, _ := strconv.Atoi(os.Getenv("ETHHOOK_BENCH_DOWN"))
	round, backend := lifecycle(b, down, os.Getenv("ETHHOOK_BENCH_DDL"))
	for range 3 { // warm the caches and the statement cache
		round()
	}
	before := backendTicks(b, backend)
	b.ResetTimer()
	for range b.N {
		round()
	}
	b.StopTimer()
	ms := float64(backendTicks(b, backend)-before) * 10 // USER_HZ 100
	b.ReportMetric(ms/float64(b.N), "pg_cpu_ms/1000")
}

// BenchmarkLifecyclePaired is BenchmarkLifecycle on two databases at once,
// one rolled back ETHHOOK_BENCH_DOWN migrations (default 1: the schema of
// 00086), the other on the newest schema, a round of each in turn, so both
// figures share every moment of a noisy machine (checkpoints, other
// sessions' load):
//
//	go test -run '^$' -bench LifecyclePaired -benchtime 20x ./msgstate/
//
// It reports before_pg_cpu_ms/1000 and pg_cpu_ms/1000. ETHHOOK_BENCH_DDL
// runs on the newest schema's database only, so ETHHOOK_BENCH_DOWN=0 with
// it pairs the newest schema with a what-if of it.
func BenchmarkLifecyclePaired(b *testing.B) {
	down := 1
	if n, err := strconv.Atoi(os.Getenv("ETHHOOK_BENCH_DOWN")); err == nil && n >= 0 {
		down = n
	}
	oldRound, oldBackend := lifecycle(b, down, "")
	newRound, newBackend := lifecycle(b, 0, os.Getenv("ETHHOOK_BENCH_DDL"))
	for range 3 {
		oldRound()
		newRound()
	}
	var oldTicks, newTicks int64
	timed := func(round func(), backend int) int64 {
		t := backendTicks(b, backend)
		round()
		return backendTicks(b, backend) - t
	}
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 { // which goes first alternates too
			oldTicks += timed(oldRound, oldBackend)
			newTicks += timed(newRound, newBackend)
		} else {
			newTicks += timed(newRound, newBackend)
			oldTicks += timed(oldRound, oldBackend)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(oldTicks)*10/float64(b.N), "before_pg_cpu_ms/1000")
	b.ReportMetric(float64(newTicks)*10/float64(b.N), "pg_cpu_ms/1000")
}

// lifecycle makes a test database rolled back down migrations (then ddl
// run on it) and returns one round of 1,000 webhooks on one connection to
// it, and the pid of the backend serving that connection.
func lifecycle(b *testing.B, down int, ddl string) (func(), int) {
	ctx := context.Background()
	base := testenv.PG(b)
	legacy := false
	if down > 0 {
		legacy = rollBack(b, base, down)
	}
	if ddl != "" {
		if _, err := base.Exec(ctx, ddl); err != nil {
			b.Fatalf("ETHHOOK_BENCH_DDL: %v", err)
		}
	}
	cfg := base.Config().Copy()
	cfg.MaxConns, cfg.MinConns = 1, 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	var backend int
	if err := pool.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		b.Fatal(err)
	}
	const endpoints, batch = 100, 1000
	if _, err := pool.Exec(ctx, `INSERT INTO applications (id, name) VALUES ('app_B', 'B')`); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO endpoints (id, app_id, url, secret_enc)
		SELECT 'ep_' || i, 'app_B', 'https://b.example', '\x00' FROM generate_series(1, $1) i`, endpoints); err != nil {
		b.Fatal(err)
	}
	payload := `{"log":{"data":"0x` + strings.Repeat("00", 96) + `"}}`
	seq := 0
	round := func() {
		rows := MakeRows(batch)
		for i := range batch {
			seq++
			rows.IDs[i], rows.AppIDs[i], rows.EndpointIDs[i] = "msg_"+ulid.Make().String(), "app_B", fmt.Sprintf("ep_%d", seq%endpoints+1)
			rows.EventIDs[i] = fmt.Sprintf("1:%s:%d", randHex(32), i)
			rows.Types[i], rows.WebhookIDs[i], rows.ChainIDs[i], rows.BlockNumbers[i] = "log", rows.EventIDs[i], 1, int64(seq/100)
			rows.BlockHashes[i], rows.TxHashes[i], rows.Payloads[i], rows.States[i] = "0x"+randHex(32), "0x"+randHex(32), payload, hook.StatePending
			rows.LogIndexes[i] = int32(i)
		}
		insert, claim, finish := Insert, Claim, Finish
		if legacy {
			insert, claim, finish = legacyInsert, legacyClaim, legacyFinish
		}
		got, err := insert(ctx, pool, &rows, true)
		if err == nil {
			got.Close()
			err = got.Err()
		}
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		claimed, err := claim(ctx, pool, rows.IDs, Lease{Owner: "bench", Until: now.Add(time.Minute), Now: now})
		if err != nil || len(claimed) != batch {
			b.Fatalf("claimed %d of %d: %v", len(claimed), batch, err)
		}
		status := int32(200)
		res := Results{}
		hist := make([][]any, 0, len(claimed))
		for _, c := range claimed {
			res.IDs, res.States = append(res.IDs, c.ID), append(res.States, hook.StateSucceeded)
			res.Attempts, res.Statuses = append(res.Attempts, 1), append(res.Statuses, &status)
			res.Errors, res.Nexts = append(res.Errors, ""), append(res.Nexts, nil)
			hist = append(hist, []any{c.ID, c.EndpointID, c.AppID, int32(1), &status, "", "",
				fmt.Sprintf(benchRequestHeaders, c.WebhookID), benchResponseHeaders, "", int32(1), now})
		}
		// The result as deliver's writer records it: the state update and
		// the attempt rows by COPY, in one transaction.
		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := finish(ctx, tx, "bench", &res); err != nil {
				return err
			}
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"delivery_history"}, benchHistoryColumns, pgx.CopyFromRows(hist))
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return round, backend
}

// The attempt row of a delivered webhook, as deliver's writer COPYs it,
// with headers of a typical size.
var benchHistoryColumns = []string{"message_id", "endpoint_id", "app_id", "attempt", "status_code", "error_class", "error",
	"request_headers", "response_headers", "response_excerpt", "latency_ms", "created_at"}

const (
	benchRequestHeaders = `{"Content-Type":"application/json","User-Agent":"ethhook/1","Webhook-Id":%q,` +
		`"Webhook-Signature":"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=","Webhook-Timestamp":"1764700000"}`
	benchResponseHeaders = `{"Content-Length":"0","Date":"Wed, 02 Dec 2026 17:00:00 GMT"}`
)

// rollBack undoes the newest n migrations of pool's database, as
// `ethhook migrate down` would, for comparing an older schema, and reports
// whether it rolled back 00087 (the state on messages again).
func rollBack(b *testing.B, pool *pgxpool.Pool, n int) bool {
	ctx := context.Background()
	legacy := false
	for range n {
		var version int64
		if err := pool.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&version); err != nil {
			b.Fatal(err)
		}
		sql, err := downSQL(version)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := pool.Exec(ctx, sql); err != nil {
			b.Fatalf("roll back %d: %v", version, err)
		}
		if _, err := pool.Exec(ctx, `DELETE FROM goose_db_version WHERE version_id = $1`, version); err != nil {
			b.Fatal(err)
		}
		legacy = legacy || version == 87
	}
	return legacy
}

// The three statements of a webhook before 00087, when the state lived on
// the messages row, for the 'before' figure.
const legacyInsertSQL = `INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number,
		block_hash, tx_hash, payload, state, log_index, fifo_key)
	SELECT t.id, t.app_id, t.endpoint_id, t.event_id, t.type, t.webhook_id, t.chain_id, t.block_number,
		t.block_hash, t.tx_hash, t.payload::json, t.state, t.log_index, NULLIF(t.fifo_key, '')
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[],
		$9::text[], $10::text[], $11::text[], $12::text[], $14::int4[], $15::text[])
		AS t(id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, block_hash, tx_hash, payload, state,
			log_index, fifo_key)
	WHERE EXISTS (SELECT 1 FROM endpoints e WHERE e.id = t.endpoint_id)
	  AND (NOT $13 OR NOT EXISTS (SELECT 1 FROM process_holds h
			WHERE h.endpoint_id = t.endpoint_id AND h.event_id = t.event_id AND h.state = 'removed'))
	ON CONFLICT DO NOTHING
	RETURNING id`

func legacyInsert(ctx context.Context, q Querier, rows *Rows, tombstones bool) (pgx.Rows, error) {
	return q.Query(ctx, legacyInsertSQL, rows.args(tombstones)...)
}

// legacyClaim is the claim of the old schema, as it ran then: one statement
// (q is the pool, which is also a Querier).
func legacyClaim(ctx context.Context, q Batcher, ids []string, l Lease) ([]Claimed, error) {
	rows, err := q.(Querier).Query(ctx, `
		UPDATE messages m SET state = 'delivering', lease_owner = $2, lease_until = $3, updated_at = now()
		FROM endpoints e
		WHERE m.id = ANY($1) AND e.id = m.endpoint_id AND e.enabled AND (m.fifo_key IS NULL OR e.ordering <> 'fifo')
		  AND (m.state = 'pending'
		       OR (m.state = 'failed' AND m.next_attempt_at <= $4)
		       OR (m.state = 'delivering' AND m.lease_until < $4))
		RETURNING m.id, m.endpoint_id, m.app_id, m.webhook_id, m.payload, m.attempts, m.retry_base, m.created_at, m.lease_until`,
		ids, l.Owner, l.Until, l.Now)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanClaimed)
}

func legacyFinish(ctx context.Context, q Querier, owner string, r *Results) (int64, error) {
	tag, err := q.Exec(ctx, `
		UPDATE messages m SET state = u.state, attempts = u.attempts, last_status = u.status, last_error = u.err,
		       next_attempt_at = u.next, lease_owner = NULL, lease_until = NULL, updated_at = now()
		FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::text[], $6::timestamptz[])
		     AS u(id, state, attempts, status, err, next)
		WHERE m.id = u.id AND m.state = 'delivering' AND m.lease_owner = $7`,
		r.IDs, r.States, r.Attempts, r.Statuses, r.Errors, r.Nexts, owner)
	return tag.RowsAffected(), err
}

// downSQL is the Down part of migration version (plain statements only).
func downSQL(version int64) (string, error) {
	files, err := os.ReadDir("../migrations")
	if err != nil {
		return "", err
	}
	for _, f := range files {
		if strings.HasPrefix(f.Name(), fmt.Sprintf("%05d_", version)) {
			text, err := os.ReadFile("../migrations/" + f.Name())
			if err != nil {
				return "", err
			}
			_, down, ok := strings.Cut(string(text), "-- +goose Down")
			if !ok {
				return "", fmt.Errorf("%s has no Down part", f.Name())
			}
			return down, nil
		}
	}
	return "", fmt.Errorf("no migration %d", version)
}

func backendTicks(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("read the backend's CPU time (is Postgres local?): %v", err)
	}
	s := string(raw)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ut, _ := strconv.ParseInt(fs[11], 10, 64)
	st, _ := strconv.ParseInt(fs[12], 10, 64)
	return ut + st
}

func randHex(n int) string {
	buf := make([]byte, n)
	rand.Read(buf)
	return hex.EncodeToString(buf)
}
