package retention

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/internal/sleep"
)

const (
	// purgePause separates purge batches while there is work: a big
	// endpoint's history goes at about half of one Postgres core at most,
	// leaving the rest to the pipeline.
	purgePause = 100 * time.Millisecond
	// purgeIdle is how often the queue is looked at when it had nothing.
	purgeIdle = 10 * time.Second
)

// purgeLoop deletes the history deleted endpoints left (PurgeDeleted)
// until ctx ends, batch after batch while there is work. It logs once when
// a purge finishes (with how many rows went), and once when purging starts
// failing and when it works again, not every try.
func (m *Module) purgeLoop(ctx context.Context) {
	var purged, failures int64
	for {
		n, err := PurgeDeleted(ctx, m.pool, m.now())
		purged += n
		switch {
		case err != nil && ctx.Err() == nil:
			if failures == 0 {
				m.log.Warn("purging the history of deleted endpoints failed; retrying", zap.Error(err), zap.Duration("every", purgeIdle))
			}
			failures++
		case err == nil && failures > 0:
			m.log.Info("purging the history of deleted endpoints works again", zap.Int64("failed_tries", failures))
			failures = 0
		}
		wait := purgeIdle
		if err == nil && n > 0 {
			wait = purgePause
		} else if purged > 0 {
			m.log.Info("purged the history of deleted endpoints", zap.Int64("rows", purged))
			purged = 0
		}
		if !sleep.For(ctx, wait) {
			return
		}
	}
}

// PurgeBatch is how many messages one purge transaction deletes, with
// their states and attempts: enough to make progress (about 0.1 s of
// Postgres), few enough that its locks and WAL stay short.
const PurgeBatch = 5000

// PurgeGrace is how long a purge entry outlives its endpoint's delete: an
// insert of process that took its snapshot before the delete committed
// may still add messages for it (nothing checks a key now). A pass after
// the grace that finds nothing ends the purge.
const PurgeGrace = 2 * time.Minute

// purgeLock is the advisory lock a purge transaction tries ("prge"):
// processes of the retention role take turns a batch at a time rather than
// delete the same rows.
const purgeLock = int64(0x70726765)

// PurgeDeleted deletes, for each endpoint queued by msgstate.Forget, up to
// PurgeBatch of its messages with their states and attempts (or, once its
// messages are gone, of its holds, then of its attempts left without a
// message), each endpoint in a transaction of its own, and returns how
// many rows it deleted: 0 when nothing is left or another process holds
// the purge lock, so a caller calls again until 0. An endpoint with
// nothing left, deleted more than PurgeGrace before now, leaves the queue.
func PurgeDeleted(ctx context.Context, db *pgxpool.Pool, now time.Time) (int64, error) {
	rows, err := db.Query(ctx, `SELECT endpoint_id FROM endpoint_purges ORDER BY deleted_at, endpoint_id LIMIT 100`)
	if err != nil {
		return 0, fmt.Errorf("read the endpoints to purge: %w", err)
	}
	queued, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("read the endpoints to purge: %w", err)
	}
	var total int64
	for _, id := range queued {
		n, err := purgeOne(ctx, db, id, now.Add(-PurgeGrace))
		if err != nil {
			return total, fmt.Errorf("purge the history of deleted endpoint %s: %w", id, err)
		}
		total += n
	}
	return total, nil
}

// purgeMessagesSQL deletes a batch of endpoint $1's messages and, by their
// ids, their states and attempts. Every read is by key (the ids are an
// array, not a join, and sequential scans are off in purgeOne's
// transaction), whatever the statistics of a partition say.
const purgeMessagesSQL = `WITH m AS (
	    DELETE FROM messages WHERE id = ANY(ARRAY(SELECT id FROM messages WHERE endpoint_id = $1 LIMIT $2)) RETURNING id
	), s AS (
	    DELETE FROM message_states WHERE id = ANY(ARRAY(SELECT id FROM m))
	), h AS (
	    DELETE FROM delivery_history WHERE message_id = ANY(ARRAY(SELECT id FROM m))
	)
	SELECT count(*) FROM m`

// purgeHoldsSQL deletes a batch of endpoint $1's holds (process_holds, by
// its primary key).
const purgeHoldsSQL = `DELETE FROM process_holds
	WHERE endpoint_id = $1 AND event_id = ANY(ARRAY(SELECT event_id FROM process_holds WHERE endpoint_id = $1 LIMIT $2))`

// purgeAttemptsSQL deletes a batch of endpoint $1's attempts whose message
// is gone already (delivery_history has no key to messages, migration
// 00089, so nothing else would).
const purgeAttemptsSQL = `DELETE FROM delivery_history
	WHERE endpoint_id = $1 AND id = ANY(ARRAY(SELECT id FROM delivery_history WHERE endpoint_id = $1 LIMIT $2))`

func purgeOne(ctx context.Context, db *pgxpool.Pool, endpointID string, graceBefore time.Time) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var mine bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1), set_config('enable_seqscan', 'off', true)`,
			purgeLock).Scan(&mine, new(string)); err != nil || !mine {
			return err
		}
		if err := tx.QueryRow(ctx, purgeMessagesSQL, endpointID, PurgeBatch).Scan(&n); err != nil || n > 0 {
			return err
		}
		for _, sql := range []string{purgeHoldsSQL, purgeAttemptsSQL} {
			tag, err := tx.Exec(ctx, sql, endpointID, PurgeBatch)
			if n = tag.RowsAffected(); err != nil || n > 0 {
				return err
			}
		}
		_, err := tx.Exec(ctx, `DELETE FROM endpoint_purges WHERE endpoint_id = $1 AND deleted_at < $2`, endpointID, graceBefore)
		return err
	})
	return n, err
}
