package retention_test

import (
	"context"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap/zaptest"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/retention"
)

var boundRE = regexp.MustCompile(`^FOR VALUES FROM \((.+)\) TO \((.+)\)$`)

type bound struct {
	name   string
	lo, hi time.Time // zero lo: MINVALUE
}

// bounds lists the partitions of messages, message_states,
// delivery_history or audit_log with their ranges, oldest first (the
// default partition left out).
func bounds(t *testing.T, pool *pgxpool.Pool, parent string) []bound {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// pg_get_expr writes audit_log's timestamp bounds in the session's zone.
	if _, err := conn.Exec(ctx, `SET TimeZone = 'UTC'`); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass`, parent)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	parse := func(s string) time.Time {
		if s == "MINVALUE" {
			return time.Time{}
		}
		v := strings.Trim(s, "'")
		if !strings.HasPrefix(v, hook.MessageIDPrefix) { // audit_log: a timestamp
			at, err := time.Parse("2006-01-02 15:04:05-07", v)
			if err != nil {
				t.Fatalf("bound %q: %v", s, err)
			}
			return at.UTC()
		}
		at, ok := hook.MessageTime(v + "0000000000000000")
		if !ok {
			t.Fatalf("bound %q", s)
		}
		return at.UTC()
	}
	var out []bound
	for rows.Next() {
		var name, expr string
		if err := rows.Scan(&name, &expr); err != nil {
			t.Fatal(err)
		}
		if expr == "DEFAULT" {
			continue
		}
		m := boundRE.FindStringSubmatch(expr)
		if m == nil {
			t.Fatalf("partition %s bound %q", name, expr)
		}
		out = append(out, bound{name, parse(m[1]), parse(m[2])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].hi.Before(out[j].hi) })
	return out
}

// contiguous fails unless the ranges follow each other without a gap or an
// overlap.
func contiguous(t *testing.T, bs []bound) {
	t.Helper()
	for i := 1; i < len(bs); i++ {
		if !bs[i].lo.Equal(bs[i-1].hi) {
			t.Errorf("partition %s starts at %s, the one before (%s) ends at %s", bs[i].name, bs[i].lo, bs[i-1].name, bs[i-1].hi)
		}
	}
}

// A fresh database (the migration's legacy partition and the days ahead,
// all empty) switched to 5-minute partitions: the empty wide partitions are
// cut back to the end of now's slot at once, 5-minute slots follow, and
// every slot takes a message of its time. Twice: now, and 7 minutes before the next UTC midnight, where a 5-minute
// partition ahead starts at midnight (and so takes a day's name).
func TestEnsureNarrowWidthCutsEmptyWidePartitionsBack(t *testing.T) {
	now := time.Now().UTC()
	for name, at := range map[string]time.Time{
		"now":             now,
		"before-midnight": hook.PartitionStart(now, day).Add(day - 7*time.Minute),
	} {
		t.Run(name, func(t *testing.T) { ensureNarrowWidth(t, at) })
	}
}

func ensureNarrowWidth(t *testing.T, now time.Time) {
	pool := setup(t)
	ctx := context.Background()
	const w = 5 * time.Minute
	if _, err := retention.Ensure(ctx, pool, now, retention.Layout{Width: w, Ahead: 3}); err != nil {
		t.Fatal(err)
	}
	cut := hook.PartitionStart(now, w).Add(w)
	for _, parent := range []string{"messages", "message_states", "delivery_history", "audit_log"} {
		bs := bounds(t, pool, parent)
		contiguous(t, bs)
		var n5 int
		for _, b := range bs {
			if b.hi.After(cut) {
				if b.hi.Sub(b.lo) != w {
					t.Errorf("%s: partition %s [%s, %s) ends after now's slot and is not 5m wide", parent, b.name, b.lo, b.hi)
				}
				n5++
			}
		}
		if n5 < 3 {
			t.Errorf("%s: %d 5-minute partitions ahead of now's slot, want at least 3: %v", parent, n5, bs)
		}
	}
	for i := range 4 {
		insert(t, pool, now.Add(time.Duration(i)*w), i)
	}
	// Again: nothing more to do.
	if _, err := retention.Ensure(ctx, pool, now, retention.Layout{Width: w, Ahead: 3}); err != nil {
		t.Fatal(err)
	}
	contiguous(t, bounds(t, pool, "messages"))
}

// A day partition ahead that already holds a row stays whole: the new width
// starts after it (ranges never overlap); only the empty ones after it go.
// Back to days, a partition ending off the day grid is followed by one
// running to the next midnight.
func TestEnsureWidthChangeKeepsPartitionsWithRowsAndNeverOverlaps(t *testing.T) {
	pool := setup(t)
	ctx := context.Background()
	now := time.Now().UTC()
	tomorrowNoon := hook.PartitionStart(now, day).Add(day + 12*time.Hour)
	// A block an hour ahead of now, stored in tomorrow's partition if now is
	// late in the day; here: a row made "tomorrow" by a test clock.
	insert(t, pool, tomorrowNoon, 1)
	const w = 10 * time.Minute
	if _, err := retention.Ensure(ctx, pool, now, retention.Layout{Width: w, Ahead: 3}); err != nil {
		t.Fatal(err)
	}
	bs := bounds(t, pool, "messages")
	contiguous(t, bs)
	dayAfter := hook.PartitionStart(now, day).Add(2 * day)
	if last := bs[len(bs)-1]; !last.hi.Equal(dayAfter) {
		t.Fatalf("newest partition %s [%s, %s), want tomorrow's (it holds a row) and the empty ones after it gone", last.name, last.lo, last.hi)
	}
	// Once the clock nears its end, the new width follows it.
	if _, err := retention.Ensure(ctx, pool, dayAfter.Add(-time.Minute), retention.Layout{Width: w, Ahead: 3}); err != nil {
		t.Fatal(err)
	}
	bs = bounds(t, pool, "messages")
	contiguous(t, bs)
	for _, b := range bs {
		if b.lo.Before(dayAfter) && b.hi.After(dayAfter) {
			t.Errorf("partition %s [%s, %s) spans the end of the partition holding a row", b.name, b.lo, b.hi)
		}
		if !b.lo.Before(dayAfter) && b.hi.Sub(b.lo) != w {
			t.Errorf("partition %s [%s, %s) after the kept day is not %s wide", b.name, b.lo, b.hi, w)
		}
	}
	if bs[len(bs)-1].lo.Before(dayAfter) {
		t.Errorf("no %s partitions after tomorrow's (which holds a row): %v", w, bs)
	}
	// Back to days, from a clock past the 10-minute partitions.
	later := bs[len(bs)-1].hi.Add(time.Minute)
	if _, err := retention.Ensure(ctx, pool, later, retention.Layout{Width: day, Ahead: 2}); err != nil {
		t.Fatal(err)
	}
	bs = bounds(t, pool, "messages")
	contiguous(t, bs)
	last := bs[len(bs)-1]
	if !last.hi.Equal(hook.PartitionStart(last.hi, day)) {
		t.Errorf("back to days: newest partition %s ends at %s, off midnight", last.name, last.hi)
	}
	contiguous(t, bounds(t, pool, "delivery_history"))
}

// Several processes switching a database to 5-minute partitions at once:
// none fails, the ranges are contiguous, twins match.
func TestEnsureNarrowWidthUnderConcurrentProcesses(t *testing.T) {
	pool := setup(t)
	url := pool.Config().ConnString()
	ctx := context.Background()
	now := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := pgxpool.New(ctx, url)
			if err != nil {
				errs <- err
				return
			}
			defer p.Close()
			_, err = retention.Ensure(ctx, p, now.Add(time.Duration(i)*time.Minute), retention.Layout{Width: 5 * time.Minute, Ahead: 3})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ms := bounds(t, pool, "messages")
	contiguous(t, ms)
	for _, twin := range []string{"message_states", "delivery_history"} {
		dh := bounds(t, pool, twin)
		contiguous(t, dh)
		if len(ms) != len(dh) {
			t.Fatalf("%d messages partitions, %d %s", len(ms), len(dh), twin)
		}
		for i := range ms {
			if !ms[i].lo.Equal(dh[i].lo) || !ms[i].hi.Equal(dh[i].hi) {
				t.Errorf("messages %s [%s, %s) and %s %s [%s, %s) differ", ms[i].name, ms[i].lo, ms[i].hi, twin, dh[i].name, dh[i].lo, dh[i].hi)
			}
		}
	}
}

// shortRetention is 10 minutes of messages in 5-minute partitions.
func shortRetention() config.Retention {
	cfg := config.DefaultRetention()
	cfg.Messages, cfg.PartitionWidth, cfg.Interval = 10*time.Minute, 5*time.Minute, time.Minute
	return cfg
}

func setState(t *testing.T, pool *pgxpool.Pool, id, state string) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `UPDATE message_states SET state = $2 WHERE id = $1`, id, state); err != nil {
		t.Fatal(err)
	}
}

// A partition past retention holding messages pending, delivering or
// failed (awaiting a retry) is dropped, but those messages and their
// attempts are moved to the default partitions first: still there by id,
// still taking attempts, and only they outlive retention (the finished
// message beside them goes). Once finished, a later round deletes them. A
// message waiting for a quota reset is not kept.
func TestDropMovesMessagesInFlightOutOfPartitionsPastRetention(t *testing.T) {
	pool := setup(t)
	ctx := context.Background()
	cfg := shortRetention()
	start := time.Now().UTC()
	m := retention.New(module.Deps{Config: config.Config{Retention: cfg}, Pool: pool, Log: zaptest.NewLogger(t)}, retention.Options{})
	m.SetClock(func() time.Time { return start })
	if err := m.Round(ctx); err != nil {
		t.Fatal(err)
	}
	later := start.Add(time.Hour)
	m.SetClock(func() time.Time { return later })
	if _, err := retention.Ensure(ctx, pool, later, retention.LayoutOf(cfg)); err != nil {
		t.Fatal(err)
	}
	slot := func(at time.Time) time.Time { return hook.PartitionStart(at, cfg.PartitionWidth).Add(time.Minute) }
	busy := slot(start.Add(15 * time.Minute))
	var inFlight []string
	for i, state := range []string{hook.StatePending, hook.StateDelivering, hook.StateFailed} {
		id := insert(t, pool, busy.Add(time.Duration(i)*time.Second), i)
		setState(t, pool, id, state)
		inFlight = append(inFlight, id)
	}
	done := insert(t, pool, busy.Add(10*time.Second), 10)
	quiet := insert(t, pool, slot(start.Add(25*time.Minute)), 20)
	quota := insert(t, pool, slot(start.Add(35*time.Minute)), 30)
	setState(t, pool, quota, "quota_exceeded")
	if err := m.Round(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range inFlight {
		if count(t, pool, `SELECT count(*) FROM messages WHERE id = $1`, id) != 1 ||
			count(t, pool, `SELECT count(*) FROM message_states WHERE id = $1`, id) != 1 ||
			count(t, pool, `SELECT count(*) FROM delivery_history WHERE message_id = $1`, id) != 1 {
			t.Errorf("message %s in flight (or its state or its attempt) lost when its partition was dropped", id)
		}
		// Its next attempt can be written, and it can finish.
		if _, err := pool.Exec(ctx, `INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt) VALUES ($1, 'ep_r', 'app_r', 2)`, id); err != nil {
			t.Errorf("second attempt of %s in flight: %v", id, err)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM messages_default WHERE id = ANY($1)`, inFlight); n != len(inFlight) {
		t.Errorf("%d of %d messages in flight in messages_default", n, len(inFlight))
	}
	if n := count(t, pool, `SELECT count(*) FROM message_states_default WHERE id = ANY($1)`, inFlight); n != len(inFlight) {
		t.Errorf("%d of %d states in flight in message_states_default", n, len(inFlight))
	}
	for _, id := range []string{done, quiet, quota} {
		if n := count(t, pool, `SELECT count(*) FROM messages WHERE id = $1`, id) + count(t, pool, `SELECT count(*) FROM message_states WHERE id = $1`, id); n != 0 {
			t.Errorf("finished message %s past retention not dropped", id)
		}
	}
	for _, name := range names(t, pool, "messages") {
		if name == "messages_legacy" {
			t.Errorf("partitions past retention left: %v", names(t, pool, "messages"))
		}
	}
	// Creating partitions ahead still works beside the moved rows.
	if _, err := retention.Ensure(ctx, pool, later.Add(time.Hour), retention.LayoutOf(cfg)); err != nil {
		t.Fatal(err)
	}
	for _, id := range inFlight {
		setState(t, pool, id, hook.StateSucceeded)
	}
	if err := m.Round(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range inFlight {
		if count(t, pool, `SELECT count(*) FROM messages WHERE id = $1`, id) != 0 || count(t, pool, `SELECT count(*) FROM message_states WHERE id = $1`, id) != 0 ||
			count(t, pool, `SELECT count(*) FROM delivery_history WHERE message_id = $1`, id) != 0 {
			t.Errorf("message %s (or its attempts) still there once finished and past retention", id)
		}
	}
}

// Retention rounds dropping partitions while deliveries run: a deliverer
// takes pending messages of partitions already past retention one by one
// (pending -> delivering, an attempt written, -> succeeded, as deliver
// does) while rounds run as fast as they can. Every message is found and
// finished (none vanishes under it), and once all are done the partitions
// go.
func TestRetentionWhileDeliveriesRunLosesNothingInFlight(t *testing.T) {
	pool := setup(t)
	ctx := context.Background()
	cfg := shortRetention()
	start := time.Now().UTC()
	m := retention.New(module.Deps{Config: config.Config{Retention: cfg}, Pool: pool, Log: zaptest.NewLogger(t)}, retention.Options{})
	m.SetClock(func() time.Time { return start })
	if err := m.Round(ctx); err != nil {
		t.Fatal(err)
	}
	later := start.Add(time.Hour)
	if _, err := retention.Ensure(ctx, pool, later, retention.LayoutOf(cfg)); err != nil {
		t.Fatal(err)
	}
	// 120 pending messages over six 5-minute slots, all past retention at
	// 'later'.
	var ids []string
	for i := range 120 {
		at := hook.PartitionStart(start, cfg.PartitionWidth).Add(10*time.Minute + time.Duration(i%6)*cfg.PartitionWidth + time.Duration(i)*time.Second)
		id := insert(t, pool, at, i)
		setState(t, pool, id, hook.StatePending)
		ids = append(ids, id)
	}
	m.SetClock(func() time.Time { return later })
	var delivered atomic.Int64
	var lost []string
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for _, id := range ids {
			step := func(q string) bool {
				tag, err := pool.Exec(ctx, q, id)
				return err == nil && tag.RowsAffected() == 1
			}
			if !step(`UPDATE message_states SET state = 'delivering' WHERE id = $1 AND state = 'pending'`) ||
				!step(`INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt) VALUES ($1, 'ep_r', 'app_r', 2)`) ||
				!step(`UPDATE message_states SET state = 'succeeded' WHERE id = $1 AND state = 'delivering'`) {
				lost = append(lost, id)
				continue
			}
			delivered.Add(1)
		}
	}()
	rounds := 0
	for running := true; running; rounds++ {
		select {
		case <-finished:
			running = false
		default:
		}
		if err := m.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d messages in flight vanished under retention (%d rounds), e.g. %s", len(lost), len(ids), rounds, lost[0])
	}
	if delivered.Load() != int64(len(ids)) {
		t.Fatalf("%d of %d delivered", delivered.Load(), len(ids))
	}
	if err := m.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, pool, `SELECT count(*) FROM messages WHERE id = ANY($1)`, ids) + count(t, pool, `SELECT count(*) FROM message_states WHERE id = ANY($1)`, ids); n != 0 {
		t.Errorf("%d finished messages (or states) past retention still there after the last round", n)
	}
}
