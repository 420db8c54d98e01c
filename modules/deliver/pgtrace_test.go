package deliver

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgTrace counts the statements a test's pool runs, by SQL text: calls,
// rows and time. ETHHOOK_BENCH_PGTRACE=1 turns it on in newEnv and prints
// the table when the test ends (a profiling aid for the benchmarks: where
// Postgres work per webhook comes from).
type pgTrace struct {
	mu    sync.Mutex
	stats map[string]*pgStat
}

type pgStat struct {
	calls, rows int64
	time        time.Duration
}

type pgTraceKey struct{}

type pgTraceStart struct {
	sql string
	at  time.Time
}

func (p *pgTrace) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, pgTraceKey{}, pgTraceStart{d.SQL, time.Now()})
}

func (p *pgTrace) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	s, _ := ctx.Value(pgTraceKey{}).(pgTraceStart)
	p.add(s, d.CommandTag.RowsAffected())
}

func (p *pgTrace) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceCopyFromStartData) context.Context {
	return context.WithValue(ctx, pgTraceKey{}, pgTraceStart{"COPY " + d.TableName.Sanitize(), time.Now()})
}

func (p *pgTrace) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceCopyFromEndData) {
	s, _ := ctx.Value(pgTraceKey{}).(pgTraceStart)
	p.add(s, d.CommandTag.RowsAffected())
}

func (p *pgTrace) add(s pgTraceStart, rows int64) {
	key := strings.Join(strings.Fields(s.sql), " ")
	if len(key) > 110 {
		key = key[:110]
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.stats[key]
	if st == nil {
		st = &pgStat{}
		p.stats[key] = st
	}
	st.calls++
	st.rows += rows
	st.time += time.Since(s.at)
}

func (p *pgTrace) print() {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]string, 0, len(p.stats))
	for k := range p.stats {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return p.stats[keys[i]].time > p.stats[keys[j]].time })
	fmt.Fprintf(os.Stderr, "%8s %9s %9s  %s\n", "calls", "rows", "ms", "statement")
	for _, k := range keys {
		s := p.stats[k]
		fmt.Fprintf(os.Stderr, "%8d %9d %9d  %s\n", s.calls, s.rows, s.time.Milliseconds(), k)
	}
}

// tracePool replaces pool with one whose statements are counted, when
// ETHHOOK_BENCH_PGTRACE is set.
func tracePool(t testing.TB, pool *pgxpool.Pool) *pgxpool.Pool {
	if os.Getenv("ETHHOOK_BENCH_PGTRACE") == "" {
		return pool
	}
	tr := &pgTrace{stats: map[string]*pgStat{}}
	cfg := pool.Config().Copy()
	cfg.ConnConfig.Tracer = tr
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(); tr.print() })
	return p
}
