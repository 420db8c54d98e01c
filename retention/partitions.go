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

	"github.com/ethhook/ethhook/config"
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

// Layout is how partitions are cut: Width wide (retention.partition_width),
// Ahead of them created past the current one (retention.ahead_days).
type Layout struct {
	Width time.Duration
	Ahead int
}

// LayoutOf is the layout the retention settings ask for.
func LayoutOf(cfg config.Retention) Layout {
	w := cfg.PartitionWidth
	if w == 0 {
		w = day
	}
	return Layout{Width: w, Ahead: cfg.AheadDays}
}

// partitionName names the partition starting at lo: the day for one
// starting at UTC midnight (the names of one-day partitions), else the day
// and the time.
func partitionName(prefix string, lo time.Time) string {
	if lo.Equal(dayStart(lo)) {
		return prefix + "_p" + lo.Format("20060102")
	}
	return prefix + "_p" + lo.Format("20060102_1504")
}

// Ensure creates the partitions missing from the end of the newest one to
// the end of the l.Ahead-th slot after now's, and returns their names (and
// the names of partitions it cut back). New partitions are l.Width wide,
// aligned on UTC midnight (the first after a partition ending off the grid
// runs to the next slot boundary), so ranges never overlap when the width
// changes. Before that, the newest partitions wider than l.Width that reach
// past now's slot and are still empty (the day partitions a fresh database
// or a width change leaves ahead) are dropped or cut back to the end of
// now's slot, so a narrower width takes effect at once on a database with
// nothing stored ahead. Migration 00063 leaves today and tomorrow covered,
// so a fresh database takes inserts before any process ran Ensure.
func Ensure(ctx context.Context, pool *pgxpool.Pool, now time.Time, l Layout) ([]string, error) {
	if l.Width <= 0 || day%l.Width != 0 {
		return nil, fmt.Errorf("partition width %s does not divide a day", l.Width)
	}
	var created []string
	err := locked(ctx, pool, func(tx pgx.Tx) error {
		created = created[:0]
		cut := hook.PartitionStart(now, l.Width).Add(l.Width)
		until := hook.PartitionStart(now, l.Width).Add(time.Duration(l.Ahead+1) * l.Width)
		// At least two widths ahead of now whatever ahead_days says: message
		// ids take block times up to min(1h, width) ahead (hook.MessageID).
		if min2 := hook.PartitionStart(now.Add(2*l.Width), l.Width); until.Before(min2) {
			until = min2
		}
		ms, err := partitions(ctx, tx, "messages", true)
		if err != nil {
			return err
		}
		ms, cutNames, err := cutBack(ctx, tx, ms, cut, l.Width, true)
		if err != nil {
			return err
		}
		created = append(created, cutNames...)
		for hi := last(ms); hi.Before(until); {
			next := hook.PartitionStart(hi, l.Width).Add(l.Width)
			name := partitionName("messages", hi)
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
		as, cutNames, err = cutBack(ctx, tx, as, cut, l.Width, false)
		if err != nil {
			return err
		}
		created = append(created, cutNames...)
		for hi := last(as); hi.Before(until); {
			next := hook.PartitionStart(hi, l.Width).Add(l.Width)
			name := partitionName("audit_log", hi)
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

// cutBack drops or narrows the newest partitions (oldest first in ps) that
// are wider than w, end after cut and hold no rows: one starting at or after
// cut goes, one starting before is re-attached as [lo, cut). For messages
// the delivery_history twin goes the same way (and must be empty too). It
// stops at the first partition holding a row: new partitions start after
// it. Emptiness is checked again under an ACCESS EXCLUSIVE lock, so no
// insert lands in between. Returns the partitions left and what it did.
func cutBack(ctx context.Context, tx pgx.Tx, ps []partition, cut time.Time, w time.Duration, byID bool) ([]partition, []string, error) {
	var did []string
	parent := "audit_log"
	if byID {
		parent = "messages"
	}
	bound := func(t time.Time) string {
		if byID {
			return IDBound(t)
		}
		return t.Format(time.RFC3339)
	}
	empty := func(name string) (bool, error) {
		var any bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+pgx.Identifier{name}.Sanitize()+`)`).Scan(&any)
		return !any, err
	}
	for len(ps) > 0 {
		p := ps[len(ps)-1]
		if !p.hi.After(cut) || (!p.lo.IsZero() && p.hi.Sub(p.lo) <= w) {
			break
		}
		tables := []string{p.name}
		if byID {
			tables = append(tables, twin(p.name))
		}
		ok := true
		for _, name := range tables {
			// A cheap look first: the current partition of a busy database is
			// never empty, and its lock would hold up every insert.
			e, err := empty(name)
			if err != nil {
				return nil, nil, fmt.Errorf("look into partition %s: %w", name, err)
			}
			ok = ok && e
		}
		if ok {
			for _, name := range tables {
				if _, err := tx.Exec(ctx, `LOCK TABLE `+pgx.Identifier{name}.Sanitize()+` IN ACCESS EXCLUSIVE MODE`); err != nil {
					return nil, nil, fmt.Errorf("lock partition %s: %w", name, err)
				}
				e, err := empty(name)
				if err != nil {
					return nil, nil, fmt.Errorf("look into partition %s: %w", name, err)
				}
				ok = ok && e
			}
		}
		if !ok {
			break
		}
		if !p.lo.Before(cut) {
			// The attempts twin first: its foreign key references the other.
			for i := len(tables) - 1; i >= 0; i-- {
				name := tables[i]
				if _, err := tx.Exec(ctx, `DROP TABLE `+pgx.Identifier{name}.Sanitize()); err != nil {
					return nil, nil, fmt.Errorf("drop empty partition %s: %w", name, err)
				}
				did = append(did, "-"+name)
			}
			ps = ps[:len(ps)-1]
			continue
		}
		lo := "MINVALUE"
		if !p.lo.IsZero() {
			lo = "'" + bound(p.lo) + "'"
		}
		if byID {
			// Rows of the default partitions in the range would make the
			// ATTACH fail (messages in flight moved there by Drop): leave it.
			var clash bool
			q, args := `SELECT EXISTS (SELECT 1 FROM messages_default WHERE id < $1)`, []any{bound(cut)}
			if !p.lo.IsZero() {
				q, args = `SELECT EXISTS (SELECT 1 FROM messages_default WHERE id < $1 AND id >= $2)`, append(args, bound(p.lo))
			}
			if err := tx.QueryRow(ctx, q, args...).Scan(&clash); err != nil {
				return nil, nil, fmt.Errorf("look into messages_default: %w", err)
			}
			if clash {
				break
			}
		}
		parents := []string{parent}
		if byID {
			parents = append(parents, "delivery_history")
		}
		for i, name := range tables {
			id := pgx.Identifier{name}.Sanitize()
			for _, q := range []string{
				fmt.Sprintf(`ALTER TABLE %s DETACH PARTITION %s`, parents[i], id),
				fmt.Sprintf(`ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO ('%s')`, parents[i], id, lo, bound(cut)),
			} {
				if _, err := tx.Exec(ctx, q); err != nil {
					return nil, nil, fmt.Errorf("cut partition %s back to %s: %w", name, cut.Format(time.RFC3339), err)
				}
			}
			did = append(did, name+"<"+cut.Format(time.RFC3339))
		}
		ps[len(ps)-1].hi = cut
		break
	}
	return ps, did, nil
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

// inFlight are the message states still to be delivered: retention never
// drops such a message. quota_exceeded waits for a quota reset that may
// never come and is not kept.
var inFlight = []string{hook.StatePending, hook.StateDelivering, hook.StateFailed}

// ulidID matches the ids ethhook makes (hook.MessageID, "msg_" + ULID).
const ulidID = `^msg_[0-9A-HJKMNP-TV-Z]{26}$`

// Dropped is what a Drop did: the partitions dropped; the messages in
// flight moved out of them into the default partitions (per partition);
// the attempts partitions past retention.attempts kept because their
// messages partition holds a message in flight; and how many finished
// stragglers were deleted from the default partition.
type Dropped struct {
	Names   []string
	Moved   map[string]int
	Kept    map[string]int
	Deleted int64
}

// Drop drops every partition entirely before its horizon and returns the
// names dropped. An attempts horizon before the messages one is moved up to
// it: attempts never outlive their message.
//
// Retention never loses an undelivered message. A messages partition past
// retention that holds messages in flight (pending, delivering, failed
// awaiting a retry) still goes, but those rows and their attempts are
// copied out first and inserted again once it is gone: no partition covers
// their ids any more, so they land in messages_default and
// delivery_history_default (migration 00063), where deliver finds them by
// id as before. Only they outlive retention, not their whole partition (a
// failing endpoint does not hold every tenant's rows for its retry
// schedule). Once finished (delivered, dead) and past retention they are
// DELETEd from the default partition by a later round: a few rows, not a
// scan. All of it runs under ACCESS EXCLUSIVE locks on the partition and
// its twin taken before looking, so no message turns in flight (a replay)
// or finishes between the copy and the drop.
//
// A delivery_history partition past retention.attempts whose messages
// partition is not past retention is kept while that partition holds a
// message in flight (its next attempt is written there); the check holds a
// SHARE lock on the messages partition.
func Drop(ctx context.Context, pool *pgxpool.Pool, h Horizons) (Dropped, error) {
	if h.Attempts.Before(h.Messages) {
		h.Attempts = h.Messages
	}
	var out Dropped
	err := locked(ctx, pool, func(tx pgx.Tx) error {
		out = Dropped{Moved: map[string]int{}, Kept: map[string]int{}}
		exec := func(what, q string, args ...any) error {
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		}
		drop := func(name string) error {
			if err := exec("drop partition "+name, `DROP TABLE IF EXISTS `+pgx.Identifier{name}.Sanitize()); err != nil {
				return err
			}
			out.Names = append(out.Names, name)
			return nil
		}
		lock := func(name, mode string) error {
			return exec("lock partition "+name, `LOCK TABLE `+pgx.Identifier{name}.Sanitize()+` IN `+mode+` MODE`)
		}
		busy := func(name string) (int, error) {
			var n int
			err := tx.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{name}.Sanitize()+` WHERE state = ANY($1)`, inFlight).Scan(&n)
			if err != nil {
				return 0, fmt.Errorf("count messages in flight in %s: %w", name, err)
			}
			return n, nil
		}
		ms, err := partitions(ctx, tx, "messages", true)
		if err != nil {
			return err
		}
		dh, err := partitions(ctx, tx, "delivery_history", true)
		if err != nil {
			return err
		}
		hasDH := map[string]bool{}
		for _, p := range dh {
			hasDH[p.name] = true
		}
		for i, p := range ms {
			// The newest partition always stays, so Ensure knows where to go on.
			if p.hi.After(h.Messages) || i == len(ms)-1 {
				continue
			}
			tw := twin(p.name)
			if err := lock(p.name, "ACCESS EXCLUSIVE"); err != nil {
				return err
			}
			if hasDH[tw] {
				if err := lock(tw, "ACCESS EXCLUSIVE"); err != nil {
					return err
				}
			}
			n, err := busy(p.name)
			if err != nil {
				return err
			}
			if n > 0 {
				m, hist := pgx.Identifier{p.name}.Sanitize(), pgx.Identifier{tw}.Sanitize()
				if err := exec("copy messages in flight out of "+p.name, `CREATE TEMP TABLE retention_moving ON COMMIT DROP AS
					SELECT * FROM `+m+` WHERE state = ANY($1)`, inFlight); err != nil {
					return err
				}
				attempts := `SELECT * FROM delivery_history WHERE false`
				if hasDH[tw] {
					attempts = `SELECT h.* FROM ` + hist + ` h WHERE h.message_id IN (SELECT id FROM retention_moving)`
				}
				if err := exec("copy attempts in flight out of "+tw, `CREATE TEMP TABLE retention_moving_attempts ON COMMIT DROP AS `+attempts); err != nil {
					return err
				}
				if hasDH[tw] {
					if err := drop(tw); err != nil {
						return err
					}
				}
				if err := drop(p.name); err != nil {
					return err
				}
				for _, q := range []string{
					`INSERT INTO messages SELECT * FROM retention_moving`,
					`INSERT INTO delivery_history SELECT * FROM retention_moving_attempts`,
					`DROP TABLE retention_moving, retention_moving_attempts`,
				} {
					if err := exec("move messages in flight of "+p.name+" to the default partition", q); err != nil {
						return err
					}
				}
				out.Moved[p.name] = n
				hasDH[tw] = false
				continue
			}
			if hasDH[tw] {
				if err := drop(tw); err != nil {
					return err
				}
				hasDH[tw] = false
			}
			if err := drop(p.name); err != nil {
				return err
			}
		}
		byName := map[string]partition{}
		for _, p := range ms {
			byName[p.name] = p
		}
		for _, p := range dh {
			if p.hi.After(h.Attempts) || !hasDH[p.name] {
				continue
			}
			if m := "messages" + strings.TrimPrefix(p.name, "delivery_history"); byName[m].name != "" && byName[m].hi.After(h.Messages) {
				// Its messages stay: keep the attempts of those in flight.
				if err := lock(m, "SHARE"); err != nil {
					return err
				}
				n, err := busy(m)
				if err != nil {
					return err
				}
				if n > 0 {
					out.Kept[p.name] = n
					continue
				}
			}
			if err := drop(p.name); err != nil {
				return err
			}
		}
		// Stragglers moved earlier, finished since and past retention.
		tag, err := tx.Exec(ctx, `DELETE FROM messages_default WHERE id ~ '`+ulidID+`' AND id < $1 AND state <> ALL($2)`,
			IDBound(h.Messages), inFlight)
		if err != nil {
			return fmt.Errorf("delete finished messages past retention from messages_default: %w", err)
		}
		out.Deleted = tag.RowsAffected()
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
	return out, err
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
