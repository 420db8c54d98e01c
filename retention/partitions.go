// Package retention owns the partitions of the tables that grow with
// traffic (messages, delivery_history, audit_log, range-partitioned by
// migration 00063): it creates one partition per UTC day ahead of time and
// drops whole partitions once they are past retention. Nothing is ever
// DELETEd row by row. Every change runs in a transaction holding one
// Postgres advisory lock and re-reads the partitions under it, so any number
// of processes (every replica's `migrate up`, several retention modules) may
// run it at once.
package retention

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

const day = 24 * time.Hour

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

// IDBound is the smallest message id of time t ("msg_" and the ULID's time
// characters): every id made at t or later sorts at or after it.
func IDBound(t time.Time) string {
	var u ulid.ULID
	_ = u.SetTime(ulid.Timestamp(t)) // partition bounds are days near now
	return hook.MessageIDPrefix + u.String()[:10]
}

func dayStart(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// twin is the delivery_history partition paired with a messages partition.
func twin(messagesPartition string) string {
	return "delivery_history" + strings.TrimPrefix(messagesPartition, "messages")
}

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

// Ensure creates the daily partitions missing from the end of the newest one
// to the end of day now+aheadDays, and returns their names. Migration 00063
// leaves today and tomorrow covered, so a fresh database takes inserts before
// any process ran Ensure.
func Ensure(ctx context.Context, pool *pgxpool.Pool, now time.Time, aheadDays int) ([]string, error) {
	var created []string
	err := locked(ctx, pool, func(tx pgx.Tx) error {
		created = created[:0]
		until := dayStart(now).Add(time.Duration(aheadDays+1) * day)
		ms, err := partitions(ctx, tx, "messages", true)
		if err != nil {
			return err
		}
		for hi := last(ms); hi.Before(until); {
			next := dayStart(hi).Add(day)
			name := "messages_p" + hi.Format("20060102")
			dh := twin(name)
			for _, q := range []string{
				fmt.Sprintf(`CREATE TABLE %s PARTITION OF messages FOR VALUES FROM ('%s') TO ('%s')`, name, IDBound(hi), IDBound(next)),
				fmt.Sprintf(`CREATE TABLE %s PARTITION OF delivery_history FOR VALUES FROM ('%s') TO ('%s')`, dh, IDBound(hi), IDBound(next)),
				// Per-partition foreign key: see migration 00063.
				fmt.Sprintf(`ALTER TABLE %s ADD CONSTRAINT %s_message_fkey FOREIGN KEY (message_id) REFERENCES %s (id) ON DELETE CASCADE`, dh, dh, name),
			} {
				if _, err := tx.Exec(ctx, q); err != nil {
					return fmt.Errorf("create partition %s: %w", name, err)
				}
			}
			created = append(created, name, dh)
			hi = next
		}
		as, err := partitions(ctx, tx, "audit_log", false)
		if err != nil {
			return err
		}
		for hi := last(as); hi.Before(until); {
			next := dayStart(hi).Add(day)
			name := "audit_log_p" + hi.Format("20060102")
			if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s PARTITION OF audit_log FOR VALUES FROM ('%s') TO ('%s')`,
				name, hi.Format(time.RFC3339), next.Format(time.RFC3339))); err != nil {
				return fmt.Errorf("create partition %s: %w", name, err)
			}
			created = append(created, name)
			hi = next
		}
		return nil
	})
	return created, err
}

// last is the upper bound of the newest partition; with none, today.
func last(ps []partition) time.Time {
	if len(ps) == 0 {
		return dayStart(time.Now())
	}
	return ps[len(ps)-1].hi
}

// Horizons are the times before which rows may go: a partition whose range
// ends at or before its table's horizon is dropped.
type Horizons struct {
	Messages, Attempts, Audit time.Time
}

// Drop drops every partition entirely before its horizon and returns the
// names dropped. An attempts horizon before the messages one is moved up to
// it: attempts never outlive their message (delivery_history partitions are
// dropped first, then the messages partitions they reference).
func Drop(ctx context.Context, pool *pgxpool.Pool, h Horizons) ([]string, error) {
	if h.Attempts.Before(h.Messages) {
		h.Attempts = h.Messages
	}
	var dropped []string
	err := locked(ctx, pool, func(tx pgx.Tx) error {
		dropped = dropped[:0]
		drop := func(name string) error {
			if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{name}.Sanitize()); err != nil {
				return fmt.Errorf("drop partition %s: %w", name, err)
			}
			dropped = append(dropped, name)
			return nil
		}
		dh, err := partitions(ctx, tx, "delivery_history", true)
		if err != nil {
			return err
		}
		for _, p := range dh {
			if !p.hi.After(h.Attempts) {
				if err := drop(p.name); err != nil {
					return err
				}
			}
		}
		ms, err := partitions(ctx, tx, "messages", true)
		if err != nil {
			return err
		}
		for i, p := range ms {
			// The newest partition always stays, so Ensure knows where to go on.
			if !p.hi.After(h.Messages) && i < len(ms)-1 {
				if err := drop(p.name); err != nil {
					return err
				}
			}
		}
		as, err := partitions(ctx, tx, "audit_log", false)
		if err != nil {
			return err
		}
		for i, p := range as {
			if !p.hi.After(h.Audit) && i < len(as)-1 {
				if err := drop(p.name); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return dropped, err
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
