package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Migrator applies the embedded schema to one database. Every run holds a
// Postgres session advisory lock, so two `ethhook migrate up` at once apply
// each migration exactly once.
type Migrator struct {
	db *sql.DB
	p  *goose.Provider
}

// New builds a Migrator on the pool; Close releases its connections.
func New(pool *pgxpool.Pool) (*Migrator, error) {
	db := stdlib.OpenDBFromPool(pool)
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	files, err := fs.Sub(FS, ".")
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, files, goose.WithSessionLocker(locker))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return &Migrator{db: db, p: p}, nil
}

// Close releases the Migrator's database handle.
func (m *Migrator) Close() error { return m.db.Close() }

// Result describes one applied or rolled back migration.
type Result struct {
	Version int64
	Name    string
}

// Up applies every pending migration and returns those it applied.
func (m *Migrator) Up(ctx context.Context) ([]Result, error) {
	res, err := m.p.Up(ctx)
	return results(res), err
}

// UpTo applies the pending migrations up to and including version (tests
// build a database as an older release left it).
func (m *Migrator) UpTo(ctx context.Context, version int64) ([]Result, error) {
	res, err := m.p.UpTo(ctx, version)
	return results(res), err
}

// Down rolls back the newest applied migration.
func (m *Migrator) Down(ctx context.Context) ([]Result, error) {
	r, err := m.p.Down(ctx)
	if errors.Is(err, goose.ErrNoNextVersion) {
		return nil, nil
	}
	if r == nil {
		return nil, err
	}
	return results([]*goose.MigrationResult{r}), err
}

// Status is one migration and whether it is applied.
type Status struct {
	Version int64
	Name    string
	Applied bool
}

// Status lists every known migration in order.
func (m *Migrator) Status(ctx context.Context) ([]Status, error) {
	st, err := m.p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	out := make([]Status, 0, len(st))
	for _, s := range st {
		out = append(out, Status{Version: s.Source.Version, Name: name(s.Source), Applied: s.State == goose.StateApplied})
	}
	return out, nil
}

// Pending lists the migrations not yet applied; serve refuses to start while
// it is not empty.
func (m *Migrator) Pending(ctx context.Context) ([]Status, error) {
	st, err := m.Status(ctx)
	if err != nil {
		return nil, err
	}
	var pending []Status
	for _, s := range st {
		if !s.Applied {
			pending = append(pending, s)
		}
	}
	return pending, nil
}

func results(rs []*goose.MigrationResult) []Result {
	out := make([]Result, 0, len(rs))
	for _, r := range rs {
		out = append(out, Result{Version: r.Source.Version, Name: name(r.Source)})
	}
	return out
}

func name(s *goose.Source) string {
	if s == nil {
		return ""
	}
	return s.Path
}
