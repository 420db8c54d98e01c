// Package retention owns the partitions of the tables that grow with
// traffic (messages, delivery_history, audit_log, range-partitioned by
// migration 00063): it creates partitions of retention.partition_width (one
// UTC day by default) ahead of time and drops whole partitions once they are
// past retention, except one still holding a message in flight. Nothing is ever
// DELETEd row by row. Every change runs in a transaction holding one
// Postgres advisory lock and re-reads the partitions under it, so any number
// of processes (every replica's `migrate up`, several retention modules) may
// run it at once.
package retention

// The partition lock every change holds (locked) and reading the partition
// catalogue: a table's partitions and their bounds, the oldest message time.

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"

	"github.com/ethhook/ethhook/hook"
)

// lockKey is the advisory lock every partition change holds ("retn").
const lockKey = int64(0x7265746e)

// locked runs f in a transaction holding the partition lock. lock_timeout
// bounds how long DDL waits behind running queries (and so how long it holds
// up the inserts queued behind it): a timeout is an error and the next round
// tries again.
func locked(ctx context.Context, pool *pgxpool.Pool, f func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '10s'`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SET LOCAL TimeZone = 'UTC'`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey); err != nil {
			return fmt.Errorf("take the partition lock: %w", err)
		}
		return f(tx)
	})
}

// hasStates reports whether message_states exists (migration 00087): Ensure
// also runs on the schema before it (`migrate up` to an older version, the
// migration tests), where a messages partition has no states twin; 00087
// pairs the partitions it finds.
func hasStates(ctx context.Context, tx pgx.Tx) (bool, error) {
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('message_states') IS NOT NULL`).Scan(&ok); err != nil {
		return false, fmt.Errorf("look for message_states: %w", err)
	}
	return ok, nil
}

// partition is one partition of a parent table and its range [lo, hi) in
// time; a MINVALUE lower bound is the zero time.
type partition struct {
	name   string
	lo, hi time.Time
}

var boundRE = regexp.MustCompile(`^FOR VALUES FROM \((.+)\) TO \((.+)\)$`)

// partitions lists parent's partitions, oldest first. byID: the bounds are
// message ids (messages, delivery_history), else timestamps (audit_log, read
// in the UTC session time zone).
func partitions(ctx context.Context, tx pgx.Tx, parent string, byID bool) ([]partition, error) {
	rows, err := tx.Query(ctx, `SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass`, parent)
	if err != nil {
		return nil, fmt.Errorf("list partitions of %s: %w", parent, err)
	}
	type raw struct{ Name, Bound string }
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[raw])
	if err != nil {
		return nil, fmt.Errorf("list partitions of %s: %w", parent, err)
	}
	out := make([]partition, 0, len(rs))
	for _, r := range rs {
		if r.Bound == "DEFAULT" {
			continue // messages_default: ids that fit no day (migration 00063)
		}
		m := boundRE.FindStringSubmatch(r.Bound)
		if m == nil {
			return nil, fmt.Errorf("partition %s of %s: unexpected bound %q", r.Name, parent, r.Bound)
		}
		p := partition{name: r.Name}
		if p.lo, err = parseBound(m[1], byID); err == nil {
			p.hi, err = parseBound(m[2], byID)
		}
		if err != nil {
			return nil, fmt.Errorf("partition %s of %s: %w", r.Name, parent, err)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].hi.Before(out[j].hi) })
	return out, nil
}

func parseBound(s string, byID bool) (time.Time, error) {
	if s == "MINVALUE" {
		return time.Time{}, nil
	}
	v, ok := strings.CutPrefix(s, "'")
	v, ok2 := strings.CutSuffix(v, "'")
	if !ok || !ok2 {
		return time.Time{}, fmt.Errorf("unexpected bound value %q", s)
	}
	if !byID {
		t, err := time.Parse("2006-01-02 15:04:05-07", v)
		if err != nil {
			return time.Time{}, fmt.Errorf("bound %q: %w", s, err)
		}
		return t.UTC(), nil
	}
	prefix, ok := strings.CutPrefix(v, hook.MessageIDPrefix)
	if !ok || len(prefix) != 10 {
		return time.Time{}, fmt.Errorf("bound %q is not msg_ and a ULID time", s)
	}
	u, err := ulid.ParseStrict(prefix + "0000000000000000")
	if err != nil {
		return time.Time{}, fmt.Errorf("bound %q: %w", s, err)
	}
	return ulid.Time(u.Time()).UTC(), nil
}

// OldestMessageTime is the start of the oldest messages partition: a
// message id of an earlier time is past retention (its day was dropped).
// The zero time while the migration's legacy partition (from MINVALUE) is
// still there.
func OldestMessageTime(ctx context.Context, pool *pgxpool.Pool) (time.Time, error) {
	var lo time.Time
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		ms, err := partitions(ctx, tx, "messages", true)
		if err != nil || len(ms) == 0 {
			return err
		}
		lo = ms[0].lo
		for _, p := range ms[1:] {
			if p.lo.Before(lo) {
				lo = p.lo
			}
		}
		return nil
	})
	return lo, err
}
