// Package msgstate writes the state transitions of messages: every INSERT
// and every UPDATE that moves a message from one state to another is one
// function of this file, and the packages that drive the transitions
// (process creates, deliver claims and records results, tenant holds and
// releases over quota, message replays, ops and admin create their own
// messages) call it. It is a package of its own, and not a file of package
// message, because tenant moves messages and message imports tenant.
//
// The state machine (hook.State*; columns written in brackets):
//
//	     Insert (process), CreateOne (ops, admin test event)
//	                  |                  \ its application over quota
//	                  v                   v
//	+----------->  pending  <-------  quota_exceeded
//	|                 |       Release (tenant: quota left)
//	| HandBack        | Claim, Pull, PullOrdered (deliver)
//	| Reclaim         v   [lease_owner, lease_until]
//	+----------- delivering <--> Renew [lease_until]
//	|                 |
//	|                 | Finish (deliver) [attempts, last_status,
//	|                 |   last_error, next_attempt_at; lease cleared]
//	|        +--------+---------+
//	|        v        v         v
//	|    succeeded  failed     dead
//	|                 |
//	|                 | next_attempt_at due: Claim, Pull, PullOrdered
//	|                 +------> delivering
//	|
//	+-- Replay, ReplayRange (message): from any state but delivering and
//	    quota_exceeded; retry_base = attempts, a fresh retry schedule
//
// The state lives in message_states (migration 00087), one narrow row per
// message beside the wide messages row (ids, payload, block), which is
// written once, by Insert or CreateOne, and only read after that (a claim
// reads its payload). Both are partitioned alike by id.
//
// A delivering message whose lease ran out (its process stopped) is claimable
// again as it is. Only the lease holder records a result or hands a message
// back: a process whose lease ran out and was taken over loses its write.
// Every transition updates updated_at except Renew (a lease renewal is not a
// change of state).
package msgstate

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ethhook/ethhook/hook"
)

// Querier runs statements: a pool, a connection or a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Beginner starts transactions (a pool or a connection).
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// ---- Create: (nothing) -> pending | quota_exceeded ----

// Rows are messages to insert, as parallel arrays (one element per message),
// which is how they reach Postgres: one statement for a whole batch.
// FIFOKeys "" is stored as NULL (a parallel endpoint).
type Rows struct {
	IDs, AppIDs, EndpointIDs, EventIDs, Types, WebhookIDs []string
	ChainIDs, BlockNumbers                                []int64
	BlockHashes, TxHashes, Payloads, States               []string
	LogIndexes                                            []int32
	FIFOKeys                                              []string
}

// MakeRows returns Rows with room for n messages.
func MakeRows(n int) Rows {
	return Rows{
		IDs: make([]string, n), AppIDs: make([]string, n), EndpointIDs: make([]string, n),
		EventIDs: make([]string, n), Types: make([]string, n), WebhookIDs: make([]string, n),
		ChainIDs: make([]int64, n), BlockNumbers: make([]int64, n),
		BlockHashes: make([]string, n), TxHashes: make([]string, n), Payloads: make([]string, n), States: make([]string, n),
		LogIndexes: make([]int32, n), FIFOKeys: make([]string, n),
	}
}

// insertSQL inserts rows given as parallel arrays, skipping those that
// exist already (the same id, hook.MessageID, or in the legacy partition of
// migration 00063 the same endpoint, event and type: without a conflict
// target every unique index of the partition is an arbiter), those whose
// endpoint is gone, and, with tombstones ($13), those whose event was
// removed before it was queued (process_holds state removed). It returns
// the ids it inserted.
const insertSQL = `WITH t AS (
	    SELECT t.* FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[],
			$9::text[], $10::text[], $11::text[], $12::text[], $14::int4[], $15::text[])
			AS t(id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, block_hash, tx_hash, payload, state,
				log_index, fifo_key)
	), m AS (
	    INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number,
			block_hash, tx_hash, payload, log_index, fifo_key)
		SELECT t.id, t.app_id, t.endpoint_id, t.event_id, t.type, t.webhook_id, t.chain_id, t.block_number,
			t.block_hash, t.tx_hash, t.payload::json, t.log_index, NULLIF(t.fifo_key, '')
		FROM t
		WHERE EXISTS (SELECT 1 FROM endpoints e WHERE e.id = t.endpoint_id)
		  AND (NOT $13 OR NOT EXISTS (SELECT 1 FROM process_holds h
				WHERE h.endpoint_id = t.endpoint_id AND h.event_id = t.event_id AND h.state = 'removed'))
		ON CONFLICT DO NOTHING
		RETURNING id, created_at
	)
	INSERT INTO message_states (id, app_id, endpoint_id, state, created_at, fifo_key, block_number, log_index, type)
	SELECT t.id, t.app_id, t.endpoint_id, t.state, m.created_at, NULLIF(t.fifo_key, ''), t.block_number, t.log_index, t.type
	FROM m JOIN t ON t.id = m.id
	ON CONFLICT DO NOTHING
	RETURNING id`

func (r *Rows) args(tombstones bool) []any {
	return []any{r.IDs, r.AppIDs, r.EndpointIDs, r.EventIDs, r.Types, r.WebhookIDs, r.ChainIDs, r.BlockNumbers,
		r.BlockHashes, r.TxHashes, r.Payloads, r.States, tombstones, r.LogIndexes, r.FIFOKeys}
}

// Insert creates rows (pending, or quota_exceeded for an application over
// its quota) in one statement; the result rows are the ids inserted.
func Insert(ctx context.Context, q Querier, rows *Rows, tombstones bool) (pgx.Rows, error) {
	return q.Query(ctx, insertSQL, rows.args(tombstones)...)
}

// QueueInsert is Insert as one statement of a batch; its result (read with
// Query) is the ids inserted.
func QueueInsert(b *pgx.Batch, rows *Rows, tombstones bool) {
	b.Queue(insertSQL, rows.args(tombstones)...)
}

// One is a message made outside the chain flow (an operator event, a test
// event): no block, hash or ordering.
type One struct {
	ID, AppID, EndpointID, EventID, Type string
	ChainID                              int64
	Payload                              []byte
}

// CreateOne creates one pending message whose webhook-id is its event id,
// unless one exists already (the same id, or in the legacy partition the
// same endpoint, event and type), and reports whether it did.
func CreateOne(ctx context.Context, q Querier, m One) (bool, error) {
	tag, err := q.Exec(ctx, `WITH m AS (
		    INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload)
		    VALUES ($1, $2, $3, $4, $5, $4, $6, 0, $7) ON CONFLICT DO NOTHING
		    RETURNING id, app_id, endpoint_id, created_at, type
		)
		INSERT INTO message_states (id, app_id, endpoint_id, state, created_at, type)
		SELECT id, app_id, endpoint_id, $8, created_at, type FROM m`,
		m.ID, m.AppID, m.EndpointID, m.EventID, m.Type, m.ChainID, m.Payload, hook.StatePending)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// ---- Claim: pending | due failed | expired delivering -> delivering ----

// Lease is who takes messages and until when; Now decides which retries
// are due and which leases ran out.
type Lease struct {
	Owner string
	Until time.Time
	Now   time.Time
}

// Claimed is a message taken by a claim, with what sending it needs.
type Claimed struct {
	ID, EndpointID, AppID, WebhookID string
	Payload                          []byte
	Attempts, RetryBase              int
	CreatedAt                        time.Time
	LeaseUntil                       time.Time

	// Set by PullOrdered only: the ordering group and the chain order.
	FIFOKey  string
	Block    int64
	LogIndex int32
	Type     string
}

// claimedState is what a claim returns of the states it updated (as c),
// claimedColumns what it reads of them and of their messages (m): the
// messages row is read, never written.
const (
	claimedState   = `s.id, s.endpoint_id, s.app_id, s.attempts, s.retry_base, s.created_at, s.lease_until`
	claimedColumns = `c.id, c.endpoint_id, c.app_id, m.webhook_id, m.payload, c.attempts, c.retry_base, c.created_at, c.lease_until`
)

func collectClaimed(rows pgx.Rows) ([]Claimed, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Claimed, error) {
		var c Claimed
		err := r.Scan(&c.ID, &c.EndpointID, &c.AppID, &c.WebhookID, &c.Payload, &c.Attempts, &c.RetryBase, &c.CreatedAt, &c.LeaseUntil)
		return c, err
	})
}

// Claim takes the messages of ids that are pending, due for retry, or held
// by a process whose lease ran out, for enabled endpoints only. A message
// already claimed is not returned, nor is an ordered message of a FIFO
// endpoint (only PullOrdered takes those). RETURNING follows the plan: the
// order of the result is not that of ids.
func Claim(ctx context.Context, q Querier, ids []string, l Lease) ([]Claimed, error) {
	rows, err := q.Query(ctx, `
		WITH c AS (
		    UPDATE message_states s SET state = 'delivering', lease_owner = $2, lease_until = $3, updated_at = now()
		    FROM endpoints e
		    WHERE s.id = ANY($1) AND e.id = s.endpoint_id AND e.enabled AND (s.fifo_key IS NULL OR e.ordering <> 'fifo')
		      AND (s.state = 'pending'
		           OR (s.state = 'failed' AND s.next_attempt_at <= $4)
		           OR (s.state = 'delivering' AND s.lease_until < $4))
		    RETURNING `+claimedState+`
		)
		SELECT `+claimedColumns+` FROM c JOIN messages m ON m.id = c.id`,
		ids, l.Owner, l.Until, l.Now)
	if err != nil {
		return nil, err
	}
	return collectClaimed(rows)
}

// Pull claims up to limit of an endpoint's waiting messages, due retries
// first, then pending ones oldest first (served by the partial indexes
// message_states_failed and message_states_waiting). SKIP LOCKED lets
// several processes pull one endpoint's backlog side by side.
func Pull(ctx context.Context, q Querier, endpointID string, limit int, l Lease) ([]Claimed, error) {
	rows, err := q.Query(ctx, `
		WITH due AS (
		    SELECT id FROM message_states WHERE endpoint_id = $1 AND state = 'failed' AND next_attempt_at <= $4
		    ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED
		), waiting AS (
		    SELECT id FROM message_states WHERE endpoint_id = $1 AND state = 'pending'
		    ORDER BY created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
		), next AS (
		    (SELECT id FROM due) UNION ALL (SELECT id FROM waiting) LIMIT $2
		), c AS (
		    UPDATE message_states s SET state = 'delivering', lease_owner = $3, lease_until = $5, updated_at = now()
		    FROM next, endpoints e
		    WHERE s.id = next.id AND e.id = s.endpoint_id AND e.enabled
		    RETURNING `+claimedState+`
		)
		SELECT `+claimedColumns+` FROM c JOIN messages m ON m.id = c.id`,
		endpointID, limit, l.Owner, l.Now, l.Until)
	if err != nil {
		return nil, err
	}
	return collectClaimed(rows)
}

// PullOrdered claims up to limit messages of a FIFO endpoint: for each of
// up to groups ordering groups (messages.fifo_key) after cursor, the run of
// claimable messages at the head of the group in chain order (block, log
// index, type, id). A group whose first waiting message is in flight, or
// failed and not yet due, is skipped, so processes never interleave a
// group; pulls of one endpoint take an advisory lock so two cannot split a
// group between them. An endpoint whose history backfill is pending or
// running is not pulled. It returns the claimed messages (unordered) and
// the cursor for the next pull: "" to start again from the first group.
func PullOrdered(ctx context.Context, db Beginner, endpointID, cursor string, groups, limit int, l Lease) ([]Claimed, string, error) {
	var claimed []Claimed
	next := ""
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		claimed, next = nil, ""
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, fifoLockKey(endpointID)); err != nil {
			return err
		}
		// The groups with waiting messages, one index probe each
		// (message_states_fifo), in key order from cursor.
		rows, err := tx.Query(ctx, `
			WITH RECURSIVE g AS (
			    (SELECT fifo_key, 1 AS n FROM message_states
			     WHERE endpoint_id = $1 AND fifo_key IS NOT NULL AND state IN ('pending', 'delivering', 'failed') AND fifo_key > $2
			     ORDER BY fifo_key LIMIT 1)
			    UNION ALL
			    SELECT (SELECT s.fifo_key FROM message_states s
			            WHERE s.endpoint_id = $1 AND s.fifo_key IS NOT NULL AND s.state IN ('pending', 'delivering', 'failed')
			              AND s.fifo_key > g.fifo_key
			            ORDER BY s.fifo_key LIMIT 1), g.n + 1
			    FROM g WHERE g.fifo_key IS NOT NULL AND g.n < $3
			)
			SELECT fifo_key FROM g WHERE fifo_key IS NOT NULL`, endpointID, cursor, groups)
		if err != nil {
			return err
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(keys) == 0 {
			return err
		}
		if len(keys) == groups {
			next = keys[len(keys)-1]
		}
		// Per group, its first limit waiting messages in chain order; a
		// message is taken when it and every one before it may be claimed.
		rows, err = tx.Query(ctx, `
			WITH head AS (
			    SELECT h.id, h.pos, g.k FROM unnest($2::text[]) AS g(k) CROSS JOIN LATERAL (
			        SELECT w.id, row_number() OVER o AS pos,
			               bool_and(w.state = 'pending' OR (w.state = 'failed' AND w.next_attempt_at <= $4)
			                        OR (w.state = 'delivering' AND w.lease_until < $4)) OVER o AS ok
			        FROM (SELECT id, state, next_attempt_at, lease_until, block_number, log_index, type FROM message_states
			              WHERE endpoint_id = $1 AND fifo_key = g.k AND state IN ('pending', 'delivering', 'failed')
			              ORDER BY block_number, log_index, type, id LIMIT $3) w
			        WINDOW o AS (ORDER BY w.block_number, w.log_index, w.type, w.id)
			    ) h WHERE h.ok
			), pick AS (
			    SELECT id FROM head ORDER BY pos, k LIMIT $3
			), c AS (
			    UPDATE message_states s SET state = 'delivering', lease_owner = $5, lease_until = $6, updated_at = now()
			    FROM pick, endpoints e
			    WHERE s.id = pick.id AND e.id = s.endpoint_id AND e.enabled
			      AND NOT EXISTS (SELECT 1 FROM endpoint_history eh WHERE eh.endpoint_id = s.endpoint_id AND eh.state IN ('pending', 'running'))
			    RETURNING `+claimedState+`, s.fifo_key, s.block_number, s.log_index, s.type
			)
			SELECT `+claimedColumns+`, c.fifo_key, c.block_number, c.log_index, c.type FROM c JOIN messages m ON m.id = c.id`,
			endpointID, keys, limit, l.Now, l.Owner, l.Until)
		if err != nil {
			return err
		}
		claimed, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Claimed, error) {
			var c Claimed
			err := r.Scan(&c.ID, &c.EndpointID, &c.AppID, &c.WebhookID, &c.Payload, &c.Attempts, &c.RetryBase, &c.CreatedAt, &c.LeaseUntil,
				&c.FIFOKey, &c.Block, &c.LogIndex, &c.Type)
			return c, err
		})
		return err
	})
	if err != nil {
		return nil, cursor, err
	}
	return claimed, next, nil
}

// fifoLockKey is the advisory lock of an endpoint's ordered pulls.
func fifoLockKey(endpointID string) int64 {
	h := fnv.New64a()
	h.Write([]byte("ethhook:deliver:fifo:"))
	h.Write([]byte(endpointID))
	return int64(h.Sum64())
}

// ---- Renew: delivering -> delivering, a later lease ----

// Renew extends to until the leases owner holds on ids and returns the ids
// renewed. SKIP LOCKED: a renewal never waits on a row a result write holds
// (that row is being finished anyway), so the two cannot deadlock; a
// skipped row is renewed on the next beat.
func Renew(ctx context.Context, q Querier, owner string, ids []string, until time.Time) ([]string, error) {
	rows, err := q.Query(ctx, `
		WITH locked AS (
		    SELECT id FROM message_states WHERE id = ANY($3) AND state = 'delivering' AND lease_owner = $1
		    FOR UPDATE SKIP LOCKED
		)
		UPDATE message_states s SET lease_until = $2 FROM locked WHERE s.id = locked.id
		RETURNING s.id`,
		owner, until, ids)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// ---- HandBack, Reclaim: delivering -> pending ----

// HandBack returns to pending the messages owner holds (ids, or all of them
// when ids is nil) and returns their jobs to offer again.
func HandBack(ctx context.Context, q Querier, owner string, ids []string) ([]hook.Job, error) {
	rows, err := q.Query(ctx, `
		UPDATE message_states SET state = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = now()
		WHERE state = 'delivering' AND lease_owner = $1 AND ($2::text[] IS NULL OR id = ANY($2))
		RETURNING id, endpoint_id`, owner, ids)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[hook.Job])
}

// Reclaim returns to pending every message a dead owner held and returns
// their jobs. Those of interrupted (the attempts it was making) count one
// attempt more, with errText as their last error and no status. It is
// conditional on the owner, so of several processes reclaiming at once
// each message is reclaimed by one.
func Reclaim(ctx context.Context, q Querier, owner string, interrupted []string, errText string) ([]hook.Job, error) {
	rows, err := q.Query(ctx, `
		UPDATE message_states SET state = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = now(),
		       attempts = attempts + CASE WHEN id = ANY($2) THEN 1 ELSE 0 END,
		       last_status = CASE WHEN id = ANY($2) THEN NULL ELSE last_status END,
		       last_error = CASE WHEN id = ANY($2) THEN $3 ELSE last_error END
		WHERE state = 'delivering' AND lease_owner = $1
		RETURNING id, endpoint_id`, owner, interrupted, errText)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[hook.Job])
}

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

// Finish records results in one statement and clears their leases. Only
// the lease holder writes: if owner's lease ran out and another process
// claimed the message, that process's result wins.
func Finish(ctx context.Context, q Querier, owner string, r *Results) error {
	_, err := q.Exec(ctx, `
		UPDATE message_states s SET state = u.state, attempts = u.attempts, last_status = u.status, last_error = u.err,
		       next_attempt_at = u.next, lease_owner = NULL, lease_until = NULL, updated_at = now()
		FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::text[], $6::timestamptz[])
		     AS u(id, state, attempts, status, err, next)
		WHERE s.id = u.id AND s.state = 'delivering' AND s.lease_owner = $7`,
		r.IDs, r.States, r.Attempts, r.Statuses, r.Errors, r.Nexts, owner)
	return err
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

// ---- Forget: the states of deleted endpoints ----

// Forget deletes the states still waiting (pending, delivering, failed,
// quota_exceeded) of endpointIDs of appID, whose messages the cascade of
// deleting the endpoints (or their application) deleted: message_states
// has no foreign key (migration 00087), and a waiting state without its
// message would count towards the application's quota and keep its
// partition's messages in flight for retention. Call it in the transaction
// that deleted them, after the delete. The finished states left behind are
// read by nothing and go with their partition.
func Forget(ctx context.Context, q Querier, appID string, endpointIDs []string) error {
	if _, err := q.Exec(ctx, `DELETE FROM message_states
		WHERE endpoint_id = ANY($2) AND state IN ('pending', 'delivering', 'failed') AND app_id = $1`, appID, endpointIDs); err != nil {
		return fmt.Errorf("forget waiting states: %w", err)
	}
	if _, err := q.Exec(ctx, `DELETE FROM message_states
		WHERE app_id = $1 AND state = 'quota_exceeded' AND endpoint_id = ANY($2)`, appID, endpointIDs); err != nil {
		return fmt.Errorf("forget held states: %w", err)
	}
	return nil
}
