// Package testenv gives tests real, isolated Postgres databases and Redis key
// prefixes. The schema is migrated once per run into a template database
// (named by a hash of the migrations, so a schema change builds a new one);
// every test then gets `CREATE DATABASE ... TEMPLATE` of it, dropped when the
// test ends. Redis tests get a unique prefix whose keys are deleted at the end.
//
// ETHHOOK_TEST_DATABASE_URL and ETHHOOK_TEST_REDIS_URL point at the servers
// (defaults: the local ones `make test` starts).
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/internal/pgpool"
	"github.com/ethhook/ethhook/migrations"
	"github.com/ethhook/ethhook/retention"
)

const (
	defaultPG    = "postgres://postgres:postgres@127.0.0.1:5432/test?sslmode=disable"
	defaultRedis = "redis://127.0.0.1:6379/0"
	// TemplatePrefix starts the name of every template database testenv makes.
	TemplatePrefix = "ethhook_tpl_"
	testDBPrefix   = "ethhook_t_"
	// RedisTestPrefix starts every Redis key prefix testenv hands out.
	RedisTestPrefix = "ethhook_t_"
)

// PGAdminURL is the database testenv connects to for CREATE/DROP DATABASE.
func PGAdminURL() string {
	if u := os.Getenv("ETHHOOK_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return defaultPG
}

// RedisURL is the Redis server tests use.
func RedisURL() string {
	if u := os.Getenv("ETHHOOK_TEST_REDIS_URL"); u != "" {
		return u
	}
	return defaultRedis
}

var (
	tplOnce sync.Once
	tplName string
	tplErr  error
)

// PGURL creates a fresh migrated database for t and returns its URL. The
// database is dropped when t ends.
func PGURL(t testing.TB) string {
	t.Helper()
	tplOnce.Do(func() { tplName, tplErr = ensureTemplate() })
	if tplErr != nil {
		t.Fatalf("testenv: template database: %v", tplErr)
	}
	name := testDBPrefix + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, PGAdminURL())
	if err != nil {
		t.Fatalf("testenv: connect to postgres at %s: %v", PGAdminURL(), err)
	}
	defer admin.Close(ctx)
	// CREATE DATABASE ... TEMPLATE fails while another session is connected to
	// the template; retry briefly in case a parallel creator holds it.
	for attempt := 0; ; attempt++ {
		_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{tplName}.Sanitize())
		if err == nil || attempt == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() { dropDatabase(name) })
	u := withDatabase(PGAdminURL(), name)
	// The template may be days old (it is kept while the migrations do not
	// change): give the copy today's partitions and the days ahead.
	if err := ensurePartitions(ctx, u); err != nil {
		t.Fatalf("testenv: partitions of %s: %v", name, err)
	}
	return u
}

func ensurePartitions(ctx context.Context, dbURL string) error {
	pool, err := pgpool.New(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	_, err = retention.Ensure(ctx, pool, time.Now(), retention.Layout{Width: 24 * time.Hour, Ahead: 3})
	return err
}

// PG returns a pool on a fresh migrated database for t, closed and dropped
// when t ends.
func PG(t testing.TB) *pgxpool.Pool {
	t.Helper()
	u := PGURL(t)
	pool, err := pgpool.New(context.Background(), u)
	if err != nil {
		t.Fatalf("testenv: open pool: %v", err)
	}
	t.Cleanup(pool.Close) // registered after the drop, so it runs first
	return pool
}

// EmptyPGURL creates a fresh database with no schema at all (for migration
// tests) and returns its URL; it is dropped when t ends.
func EmptyPGURL(t testing.TB) string {
	t.Helper()
	name := testDBPrefix + randomHex(8)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, PGAdminURL())
	if err != nil {
		t.Fatalf("testenv: connect to postgres at %s: %v", PGAdminURL(), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() { dropDatabase(name) })
	return withDatabase(PGAdminURL(), name)
}

// Redis returns a client and a unique key prefix (ending in ':') for t. Every
// key under the prefix is deleted and the client closed when t ends.
func Redis(t testing.TB) (rueidis.Client, string) {
	t.Helper()
	opt, err := rueidis.ParseURL(RedisURL())
	if err != nil {
		t.Fatalf("testenv: redis url: %v", err)
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("testenv: connect to redis at %s: %v", RedisURL(), err)
	}
	prefix := RedisTestPrefix + randomHex(6) + ":"
	t.Cleanup(func() {
		DeleteKeys(context.Background(), c, prefix)
		c.Close()
	})
	return c, prefix
}

// DeleteKeys removes every key that starts with prefix.
func DeleteKeys(ctx context.Context, c rueidis.Client, prefix string) {
	var cursor uint64
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			return
		}
		if len(e.Elements) > 0 {
			c.Do(ctx, c.B().Unlink().Key(e.Elements...).Build())
		}
		cursor = e.Cursor
		if cursor == 0 {
			return
		}
	}
}

func ensureTemplate() (string, error) {
	sum, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := TemplatePrefix + sum
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, PGAdminURL())
	if err != nil {
		return "", fmt.Errorf("connect to postgres at %s: %w", PGAdminURL(), err)
	}
	defer admin.Close(ctx)
	// Test binaries of several packages start at once: one builds the
	// template while the others wait on this lock.
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(727274001)"); err != nil {
		return "", err
	}
	defer admin.Exec(context.Background(), "SELECT pg_advisory_unlock(727274001)")

	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	// Templates of other schemas are left alone: another checkout may be
	// testing with them right now. `make test` drops them all at the end
	// (DropLeftovers).
	building := name + "_build"
	admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{building}.Sanitize()+" WITH (FORCE)")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{building}.Sanitize()); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	if err := migrate(ctx, withDatabase(PGAdminURL(), building)); err != nil {
		admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{building}.Sanitize()+" WITH (FORCE)")
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{building}.Sanitize()+" RENAME TO "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("rename template: %w", err)
	}
	return name, nil
}

func migrate(ctx context.Context, dbURL string) error {
	pool, err := pgpool.New(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := migrations.New(pool)
	if err != nil {
		return err
	}
	defer m.Close()
	_, err = m.Up(ctx)
	return err
}

func migrationsHash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		if err != nil {
			return err
		}
		h.Write([]byte(path))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func dropDatabase(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, PGAdminURL())
	if err != nil {
		return
	}
	defer admin.Close(ctx)
	admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

func withDatabase(raw, db string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + db
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToLower(hex.EncodeToString(b))
}

// DropLeftovers drops every template and test database testenv made that
// nobody is connected to.
func DropLeftovers(ctx context.Context) (int, error) {
	admin, err := pgx.Connect(ctx, PGAdminURL())
	if err != nil {
		return 0, err
	}
	defer admin.Close(ctx)
	rows, err := admin.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE $1 OR datname LIKE $2", TemplatePrefix+"%", testDBPrefix+"%")
	if err != nil {
		return 0, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	dropped := 0
	for _, n := range names {
		// Without FORCE: a database someone is connected to (a test run in
		// another checkout) fails to drop and is left to its owner.
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize()); err == nil {
			dropped++
		}
	}
	return dropped, nil
}
