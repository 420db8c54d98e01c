package testenv

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"
)

// Fault injection for "Postgres or Redis going away and coming back": the
// code under test gets connections of its own, marked with a name, so a
// test can drop them while its own connections survive.

// NamedPool opens a second pool on pool's database whose connections carry
// application_name name; it is closed when t ends.
func NamedPool(t testing.TB, pool *pgxpool.Pool, name string) *pgxpool.Pool {
	t.Helper()
	pc := pool.Config().Copy()
	pc.ConnConfig.RuntimeParams["application_name"] = name
	p, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatalf("testenv: named pool: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// DropPostgres terminates every server connection whose application_name
// is name and returns how many.
func DropPostgres(t testing.TB, name string) int {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, PGAdminURL())
	if err != nil {
		t.Fatalf("testenv: connect to postgres: %v", err)
	}
	defer admin.Close(ctx)
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, name).Scan(&n); err != nil {
		t.Fatalf("testenv: terminate connections of %s: %v", name, err)
	}
	return n
}

// NamedRedis opens a Redis client whose connections carry the client name
// name; it is closed when t ends.
func NamedRedis(t testing.TB, name string) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(RedisURL())
	if err != nil {
		t.Fatalf("testenv: redis url: %v", err)
	}
	opt.DisableCache = true
	opt.ClientName = name
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("testenv: connect to redis: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// DropRedis kills every Redis connection named name, using rdb (a client
// of the test's own), and returns how many.
func DropRedis(t testing.TB, rdb rueidis.Client, name string) int64 {
	t.Helper()
	ctx := context.Background()
	list, err := rdb.Do(ctx, rdb.B().ClientList().Build()).ToString()
	if err != nil {
		t.Fatalf("testenv: CLIENT LIST: %v", err)
	}
	var killed int64
	for _, line := range strings.Split(list, "\n") {
		if !strings.Contains(line, " name="+name+" ") {
			continue
		}
		// RESP3 may hand CLIENT LIST over as a verbatim string ("txt:").
		idStr, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(line, "txt:"), "id="), " ")
		id, err := strconv.ParseInt(idStr, 10, 64)
		if err != nil {
			t.Fatalf("testenv: CLIENT LIST line %q: %v", line, err)
		}
		if n, err := rdb.Do(ctx, rdb.B().ClientKill().Id(id).Build()).AsInt64(); err == nil {
			killed += n
		}
	}
	return killed
}
