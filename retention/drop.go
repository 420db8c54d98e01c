package retention

// Dropping partitions past retention (Drop): messages still in flight are
// moved into the default partitions before their partition goes, and the
// finished ones among them are deleted once past retention.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ethhook/ethhook/hook"
)

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
// awaiting a retry) still goes, but those rows, their states and their
// attempts are copied out first and inserted again once it is gone: no
// partition covers their ids any more, so they land in messages_default,
// message_states_default and delivery_history_default (migrations 00063,
// 00087), where deliver finds them by
// id as before. Only they outlive retention, not their whole partition (a
// failing endpoint does not hold every tenant's rows for its retry
// schedule). Once finished (delivered, dead) and past retention they are
// DELETEd from the default partition by a later round: a few rows, not a
// scan. All of it runs under ACCESS EXCLUSIVE locks on the partition and
// its twins taken before looking, so no message turns in flight (a replay)
// or finishes between the copy and the drop.
//
// A delivery_history partition past retention.attempts whose messages
// partition is not past retention is kept while that partition holds a
// message in flight (its next attempt is written there); the check holds a
// SHARE lock on the message_states twin of the messages partition.
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
		// busy counts the messages in flight of a messages partition, in
		// its message_states twin.
		busy := func(name string) (int, error) {
			var n int
			err := tx.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{states(name)}.Sanitize()+` WHERE state = ANY($1)`, inFlight).Scan(&n)
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
			tw, st := twin(p.name), states(p.name)
			if err := lock(p.name, "ACCESS EXCLUSIVE"); err != nil {
				return err
			}
			if err := lock(st, "ACCESS EXCLUSIVE"); err != nil {
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
				m, hist, sts := pgx.Identifier{p.name}.Sanitize(), pgx.Identifier{tw}.Sanitize(), pgx.Identifier{st}.Sanitize()
				if err := exec("copy states in flight out of "+st, `CREATE TEMP TABLE retention_moving_states ON COMMIT DROP AS
					SELECT * FROM `+sts+` WHERE state = ANY($1)`, inFlight); err != nil {
					return err
				}
				if err := exec("copy messages in flight out of "+p.name, `CREATE TEMP TABLE retention_moving ON COMMIT DROP AS
					SELECT * FROM `+m+` WHERE id IN (SELECT id FROM retention_moving_states)`); err != nil {
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
				if err := drop(st); err != nil {
					return err
				}
				if err := drop(p.name); err != nil {
					return err
				}
				for _, q := range []string{
					`INSERT INTO messages SELECT * FROM retention_moving`,
					`INSERT INTO message_states SELECT * FROM retention_moving_states`,
					`INSERT INTO delivery_history SELECT * FROM retention_moving_attempts`,
					`DROP TABLE retention_moving, retention_moving_states, retention_moving_attempts`,
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
			if err := drop(st); err != nil {
				return err
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
				if err := lock(states(m), "SHARE"); err != nil {
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
		// Stragglers moved earlier, finished since and past retention: the
		// states, their messages and their attempts (no foreign key deletes
		// those, migration 00089).
		err = tx.QueryRow(ctx, `WITH s AS (
				DELETE FROM message_states_default WHERE id ~ '`+ulidID+`' AND id < $1 AND state <> ALL($2) RETURNING id
			), m AS (
				DELETE FROM messages_default WHERE id IN (SELECT id FROM s) RETURNING id
			), a AS (
				DELETE FROM delivery_history_default WHERE message_id IN (SELECT id FROM s)
			)
			SELECT count(*) FROM m`,
			IDBound(h.Messages), inFlight).Scan(&out.Deleted)
		if err != nil {
			return fmt.Errorf("delete finished messages past retention from messages_default: %w", err)
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
	return out, err
}
