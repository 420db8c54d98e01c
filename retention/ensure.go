package retention

// Creating partitions ahead (Ensure), after cutting back the empty wide
// ones a narrower partition width leaves ahead (cutBack).

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ethhook/ethhook/hook"
)

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
		withStates, err := hasStates(ctx, tx)
		if err != nil {
			return err
		}
		ms, err := extend(ctx, tx, "messages", true, cut, until, l.Width, func(name string, lo, hi time.Time) ([]string, error) {
			dh, st := twin(name), states(name)
			qs := []string{fmt.Sprintf(`CREATE TABLE %s PARTITION OF messages FOR VALUES FROM ('%s') TO ('%s')`, name, IDBound(lo), IDBound(hi))}
			if withStates {
				qs = append(qs, fmt.Sprintf(`CREATE TABLE %s PARTITION OF message_states FOR VALUES FROM ('%s') TO ('%s')`, st, IDBound(lo), IDBound(hi)))
			}
			// No foreign key to the messages twin (migration 00089).
			for _, q := range append(qs,
				fmt.Sprintf(`CREATE TABLE %s PARTITION OF delivery_history FOR VALUES FROM ('%s') TO ('%s')`, dh, IDBound(lo), IDBound(hi)),
			) {
				if _, err := tx.Exec(ctx, q); err != nil {
					return nil, fmt.Errorf("create partition %s: %w", name, err)
				}
			}
			if !withStates {
				return []string{name, dh}, nil
			}
			return []string{name, st, dh}, nil
		})
		if err != nil {
			return err
		}
		created = append(created, ms...)
		as, err := extend(ctx, tx, "audit_log", false, cut, until, l.Width, func(name string, lo, hi time.Time) ([]string, error) {
			if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s PARTITION OF audit_log FOR VALUES FROM ('%s') TO ('%s')`,
				name, lo.Format(time.RFC3339), hi.Format(time.RFC3339))); err != nil {
				return nil, fmt.Errorf("create partition %s: %w", name, err)
			}
			return []string{name}, nil
		})
		if err != nil {
			return err
		}
		created = append(created, as...)
		return nil
	})
	return created, err
}

// extend brings one parent table up to until: it cuts back its empty wide
// partitions (cutBack), then creates the missing ones from the end of the
// newest, w wide, each with create(name, lo, hi), which makes the partition
// of [lo, hi) (and any twin) and returns their names. Returns what it did,
// in order: the cuts, then the partitions created.
func extend(ctx context.Context, tx pgx.Tx, parent string, byID bool, cut, until time.Time, w time.Duration,
	create func(name string, lo, hi time.Time) ([]string, error)) ([]string, error) {
	ps, err := partitions(ctx, tx, parent, byID)
	if err != nil {
		return nil, err
	}
	ps, did, err := cutBack(ctx, tx, ps, cut, w, byID)
	if err != nil {
		return nil, err
	}
	for hi := last(ps); hi.Before(until); {
		next := hook.PartitionStart(hi, w).Add(w)
		names, err := create(partitionName(parent, hi), hi, next)
		if err != nil {
			return nil, err
		}
		did = append(did, names...)
		hi = next
	}
	return did, nil
}

// cutBack drops or narrows the newest partitions (oldest first in ps) that
// are wider than w, end after cut and hold no rows: one starting at or after
// cut goes, one starting before is re-attached as [lo, cut). For messages
// the message_states and delivery_history twins go the same way (and must
// be empty too). It
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
	withStates := false
	if byID {
		var err error
		if withStates, err = hasStates(ctx, tx); err != nil {
			return nil, nil, err
		}
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
			tables = append(tables, twins(p.name, withStates)...)
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
			// The attempts twin first: on a database before 00089 its
			// foreign key references the other.
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
			parents = append(parents, twins("messages", withStates)...)
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
