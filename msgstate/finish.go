package msgstate

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ethhook/ethhook/hook"
)

// ---- Finish: delivering -> succeeded | failed | dead ----

// Results are attempt outcomes as parallel arrays (one element per
// message): the new state (succeeded, failed or dead), the attempt count,
// the HTTP status (nil: none), the error text, and for failed the due time
// of the next attempt (nil otherwise).
type Results struct {
	IDs, States []string
	Attempts    []int32
	Statuses    []*int32
	Errors      []string
	Nexts       []*time.Time
}

// Finish records results in one statement and clears their leases, and
// returns how many it recorded. Only the lease holder writes: if owner's
// lease ran out and another process claimed the message, that process's
// result wins. A result it did not record is of such a message, or of one
// whose endpoint was deleted meanwhile (Forget deleted its state).
//
// Call it in a transaction: it turns sequential scans off for the rest of
// it (SET LOCAL; outside a transaction Postgres only warns), see finishSQL.
func Finish(ctx context.Context, q Querier, owner string, r *Results) (int64, error) {
	if _, err := q.Exec(ctx, seqScansOff); err != nil {
		return 0, err
	}
	tag, err := q.Exec(ctx, finishSQL, finishArgs(owner, r)...)
	return tag.RowsAffected(), err
}

// finishSQL must find its rows by primary key, one probe per result, and
// two rewrites keep the planner from anything else, whatever the statistics
// say. The state is tested as (state = 'delivering') IS TRUE (state is NOT
// NULL, so the same), which the planner cannot match to the predicate of
// the partial waiting index: with a plain state = 'delivering' and
// statistics that say little is delivering, it read every delivering entry
// of that index (the whole index: state is its second column, after
// endpoint_id), dead ones and every endpoint's backlog included, for each
// batch (TestWritesOfMessagesByIDUseThePrimaryKey). And sequential scans
// are off (Finish): with statistics taken while a partition was nearly empty
// (a new one filling at thousands a second before autovacuum analyzes it),
// the plan became a nested loop over sequential scans of the partitions,
// a scan of the whole partition per result (a hot endpoint's p99 went from
// 50 ms to 1.7 s).
const finishSQL = `
	UPDATE message_states s SET state = u.state, attempts = u.attempts, last_status = u.status, last_error = u.err,
	       next_attempt_at = u.next, lease_owner = NULL, lease_until = NULL, updated_at = now()
	FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::text[], $6::timestamptz[])
	     AS u(id, state, attempts, status, err, next)
	WHERE s.id = u.id AND (s.state = 'delivering') IS TRUE AND s.lease_owner = $7`

// seqScansOff is Finish's pin against sequential scans (see finishSQL).
const seqScansOff = `SET LOCAL enable_seqscan = off`

func finishArgs(owner string, r *Results) []any {
	return []any{r.IDs, r.States, r.Attempts, r.Statuses, r.Errors, r.Nexts, owner}
}

// ---- Release: quota_exceeded -> pending ----

// Release moves up to n of appID's quota_exceeded messages to pending,
// oldest first, due at once, and returns their jobs. The caller decides n
// from the quota left and serialises releases of one application.
func Release(ctx context.Context, q Querier, appID string, n int64) ([]hook.Job, error) {
	rows, err := q.Query(ctx, `UPDATE message_states SET state = $2, next_attempt_at = now(), updated_at = now()
		WHERE id IN (SELECT id FROM message_states WHERE app_id = $1 AND state = $3
			ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
		RETURNING id, endpoint_id`, appID, hook.StatePending, hook.StateQuotaExceeded, n)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[hook.Job])
}

// ---- Replay: succeeded | failed | dead | pending -> pending ----

// replaySet resets a message for a fresh delivery with a fresh retry
// schedule (retry_base = attempts); the webhook-id is kept, so receivers
// deduplicate.
const replaySet = `state = 'pending', retry_base = attempts, next_attempt_at = NULL, lease_owner = NULL,
	lease_until = NULL, updated_at = now()`

// Replay resets message id for a fresh delivery unless it is delivering or
// quota_exceeded, and reports whether it did.
func Replay(ctx context.Context, q Querier, id string) (bool, error) {
	tag, err := q.Exec(ctx, "UPDATE message_states SET "+replaySet+" WHERE id = $1 AND state NOT IN ('delivering', 'quota_exceeded')", id)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// Range selects an endpoint's messages to replay. Zero bounds are open.
type Range struct {
	EndpointID string
	MinID      string    // ids from this one (retention: ids sort by time); "" for none
	Since      time.Time // created_at >= Since
	Until      time.Time // created_at < Until
	FromBlock  *int64
	ToBlock    *int64
	OnlyFailed bool // only failed and dead messages, not succeeded ones
}

// ReplayRange resets for a fresh delivery every finished message of r
// (succeeded, failed, dead; or only failed and dead) and returns their ids.
// Pending and in-flight messages are left alone.
func ReplayRange(ctx context.Context, q Querier, r Range) ([]string, error) {
	var conds []string
	var args []any
	where := func(cond string, arg any) {
		args = append(args, arg)
		conds = append(conds, fmt.Sprintf(cond, len(args)))
	}
	where("endpoint_id = $%d", r.EndpointID)
	if r.MinID != "" {
		where("id >= $%d", r.MinID)
	}
	if !r.Since.IsZero() {
		where("created_at >= $%d", r.Since)
	}
	if !r.Until.IsZero() {
		where("created_at < $%d", r.Until)
	}
	if r.FromBlock != nil {
		where("block_number >= $%d", *r.FromBlock)
	}
	if r.ToBlock != nil {
		where("block_number <= $%d", *r.ToBlock)
	}
	// Literal states, as a partial index's predicate can only be matched
	// against constants.
	if r.OnlyFailed {
		conds = append(conds, "state IN ('failed', 'dead')")
	} else {
		conds = append(conds, "state IN ('succeeded', 'failed', 'dead')")
	}
	rows, err := q.Query(ctx, "UPDATE message_states SET "+replaySet+" WHERE "+strings.Join(conds, " AND ")+" RETURNING id", args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
