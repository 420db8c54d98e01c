package outage_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ethhook/ethhook/internal/outage"
	"github.com/ethhook/ethhook/internal/testenv"
)

// closedPort is a port nothing listens on.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// The errors both clients really return, from a server that is gone, one
// that went away under an open connection, and one that refused a
// statement or a write.
func TestDepsBlameTheDependencyAnErrorCameFrom(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool := testenv.PG(t)
	rdb, prefix := testenv.Redis(t)

	var pgErrs, redisErrs []error
	// Postgres: nothing listening; a statement error; a connection cut.
	gone, err := pgxpool.New(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/test?sslmode=disable&connect_timeout=2", closedPort(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer gone.Close()
	pgErrs = append(pgErrs, gone.Ping(ctx))
	_, err = pool.Exec(ctx, `SELECT * FROM no_such_table`)
	pgErrs = append(pgErrs, fmt.Errorf("insert messages: %w", err))
	named := testenv.NamedPool(t, pool, "outage-deps-test")
	conn, err := named.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	testenv.DropPostgres(t, "outage-deps-test")
	_, err = conn.Exec(ctx, `SELECT 1`)
	conn.Release()
	pgErrs = append(pgErrs, err)

	// Redis: nothing listening; a refused write; a connection cut.
	_, err = rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{fmt.Sprintf("127.0.0.1:%d", closedPort(t))}, DisableCache: true})
	redisErrs = append(redisErrs, err)
	_ = rdb.Do(ctx, rdb.B().Set().Key(prefix+"not-a-number").Value("x").Build()).Error()
	err = rdb.Do(ctx, rdb.B().Incr().Key(prefix+"not-a-number").Build()).Error()
	redisErrs = append(redisErrs, fmt.Errorf("queue jobs: %w", err))
	named2 := testenv.NamedRedis(t, "outage-deps-test")
	blocked := make(chan error, 1)
	go func() {
		blocked <- named2.Do(ctx, named2.B().Blpop().Key(prefix+"never").Timeout(10).Build()).Error()
	}()
	time.Sleep(200 * time.Millisecond)
	testenv.DropRedis(t, rdb, "outage-deps-test")
	redisErrs = append(redisErrs, <-blocked)

	for i, err := range pgErrs {
		if err == nil || !outage.FromPostgres(err) {
			t.Errorf("postgres error %d (%v): not recognised as Postgres's", i, err)
		}
	}
	for i, err := range redisErrs {
		if err == nil || outage.FromPostgres(err) {
			t.Errorf("redis error %d (%v): taken for Postgres's", i, err)
		}
	}

	// Deps logs each dependency's outage once, under its own name.
	core, logs := observer.New(zapcore.InfoLevel)
	d := outage.NewDeps(zap.New(core))
	for range 3 {
		d.Fail("handle", pgErrs[0])
		d.Fail("handle", redisErrs[0])
	}
	var msgs []string
	for _, l := range logs.All() {
		msgs = append(msgs, l.Message)
	}
	if got := strings.Join(msgs, ", "); got != "postgres unavailable, redis unavailable" {
		t.Fatalf("lines: %s", got)
	}
	if !d.Postgres.Down() || !d.Redis.Down() {
		t.Fatal("both should be down")
	}
}

// pgx returns a connection cut mid-statement as the bare read error (the
// fault suite's postgres-down-15s: "lock chain 31337: unexpected EOF"), so
// callers that know an error is Postgres's mark it.
func TestPostgresMarksAnErrorAsPostgres(t *testing.T) {
	bare := fmt.Errorf("lock chain 31337: %w", io.ErrUnexpectedEOF)
	if outage.FromPostgres(bare) {
		t.Fatal("a bare EOF is taken for Postgres's: the marker would prove nothing")
	}
	marked := fmt.Errorf("handle: %w", outage.Postgres(bare))
	if !outage.FromPostgres(marked) {
		t.Fatal("a marked error is not Postgres's")
	}
	if !errors.Is(marked, io.ErrUnexpectedEOF) {
		t.Fatal("the mark hides the error it wraps")
	}
	if outage.Postgres(nil) != nil {
		t.Fatal("Postgres(nil) is not nil")
	}
}
