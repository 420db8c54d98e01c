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

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
)

// BenchmarkLifecycle runs the three writes every webhook makes to
// messages, 1,000 messages a batch: Insert (pending), Claim (delivering),
// Finish (succeeded), on one connection, and reports the CPU time of the
// Postgres backend serving it (from /proc, so Postgres must be local) per
// 1,000 webhooks. It isolates what the messages schema costs from the rest
// of the pipeline, so index changes can be compared on a busy machine:
//
//	go test -run '^$' -bench Lifecycle -benchtime 20x ./msgstate/
//
// ETHHOOK_BENCH_DOWN=n first rolls back the newest n migrations of the
// test database (e.g. 1 for the indexes before 00086), so one binary
// measures both schemas, interleaved. ETHHOOK_BENCH_DDL runs statements
// after that (what-ifs: 'DROP INDEX messages_block').
func BenchmarkLifecycle(b *testing.B) {
	ctx := context.Background()
	base := testenv.PG(b)
	if n, _ := strconv.Atoi(os.Getenv("ETHHOOK_BENCH_DOWN")); n > 0 {
		rollBack(b, base, n)
	}
	if ddl := os.Getenv("ETHHOOK_BENCH_DDL"); ddl != "" {
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
	defer pool.Close()
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
		got, err := Insert(ctx, pool, &rows, true)
		if err == nil {
			got.Close()
			err = got.Err()
		}
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		claimed, err := Claim(ctx, pool, rows.IDs, Lease{Owner: "bench", Until: now.Add(time.Minute), Now: now})
		if err != nil || len(claimed) != batch {
			b.Fatalf("claimed %d of %d: %v", len(claimed), batch, err)
		}
		status := int32(200)
		res := Results{}
		for _, c := range claimed {
			res.IDs, res.States = append(res.IDs, c.ID), append(res.States, hook.StateSucceeded)
			res.Attempts, res.Statuses = append(res.Attempts, 1), append(res.Statuses, &status)
			res.Errors, res.Nexts = append(res.Errors, ""), append(res.Nexts, nil)
		}
		if err := Finish(ctx, pool, "bench", &res); err != nil {
			b.Fatal(err)
		}
	}
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

// rollBack undoes the newest n migrations of pool's database, as
// `ethhook migrate down` would, for comparing an older schema.
func rollBack(b *testing.B, pool *pgxpool.Pool, n int) {
	ctx := context.Background()
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
	}
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
