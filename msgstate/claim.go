package msgstate

import (
	"context"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ethhook/ethhook/hook"
)

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

// endpointOf is the condition by which a subquery on endpoints e finds
// the endpoint of message state s by the endpoints' primary key. Claim
// checks each message's endpoint with it, in a scalar subquery, never by
// a join; Pull and PullOrdered read their one endpoint once, by its id.
// The ids in message_states are in the "C" collation and endpoints.id in
// the database's: compared as they are, no index of endpoints serves the
// comparison, so a join read every endpoint, once per statement (a hash),
// or, when the statistics said endpoints was empty (analyzed after
// endpoints were deleted), as the outer side of a loop that read the
// statement's whole batch once per endpoint: a pull of 100 messages with
// 100 endpoints made 10,000 lookups, 24 ms instead of 3
// (TestLeaseWritesLookUpEndpointsByKey). The sweep keeps its join: it
// reads thousands of messages a statement, for which one hash of the
// endpoints is cheaper than a lookup each (BenchmarkSweep, idle: 120 ms
// joined, 430-530 ms by lookups).
const endpointOf = `e.id = s.endpoint_id COLLATE "default"`

// claimedState is what a claim returns of the states it updated (as c),
// claimedColumns what it reads of them and of their messages (m): the
// messages row is read, never written, by claimedMessage.
const (
	claimedState   = `s.id, s.endpoint_id, s.app_id, s.attempts, s.retry_base, s.created_at, s.lease_until`
	claimedColumns = `c.id, c.endpoint_id, c.app_id, m.webhook_id, m.payload, c.attempts, c.retry_base, c.created_at, c.lease_until`
	// claimedMessage reads each claimed state's message by key, in a
	// lateral subquery that its LIMIT keeps from being flattened into a
	// join. As a join, with statistics that said a partition of messages
	// was empty (analyzed after its rows were deleted, its pages still
	// there), the plan read the whole partition once per claimed message,
	// by a full index scan where the pin had turned the sequential scan
	// off: 5.6 M rows, 9.4 s, for a claim of 1,000 in a benchmark run
	// after the previous run's cleanup (TestLeaseWritesReadTheirMessagesByKey).
	claimedMessage = `CROSS JOIN LATERAL (SELECT m.webhook_id, m.payload FROM messages m WHERE m.id = c.id LIMIT 1) m`
)

// dest is where a row of claimedColumns scans to, then extra.
func (c *Claimed) dest(extra ...any) []any {
	return append([]any{&c.ID, &c.EndpointID, &c.AppID, &c.WebhookID, &c.Payload, &c.Attempts, &c.RetryBase, &c.CreatedAt, &c.LeaseUntil},
		extra...)
}

func scanClaimed(r pgx.CollectableRow) (Claimed, error) {
	var c Claimed
	err := r.Scan(c.dest()...)
	return c, err
}

// Claim takes the messages of ids that are pending, due for retry, or held
// by a process whose lease ran out, for enabled endpoints only. A message
// already claimed is not returned, nor is an ordered message of a FIFO
// endpoint (only PullOrdered takes those). RETURNING follows the plan: the
// order of the result is not that of ids.
func Claim(ctx context.Context, q Batcher, ids []string, l Lease) ([]Claimed, error) {
	return leaseQuery(ctx, q, claimSQL, claimArgs(ids, l), scanClaimed)
}

func claimArgs(ids []string, l Lease) []any {
	return []any{ids, l.Owner, l.Until, l.Now, l.Now.Add(OfferSkew)}
}

// OfferSkew is how early, by the claimer's clock, Claim takes a retry it is
// offered. The promoter that offers a retry once it is due runs in
// whichever deliver process has the schedule's turn, on that process's
// clock; one running ahead of the claimer's offered retries that the claim
// found not yet due, and nothing offered them again until the sweeper
// found them overdue, tens of seconds later. A retry taken up to this much
// early, and only when offered, costs the receiver nothing. Clocks further
// apart than this between deliver processes still wait for the sweeper.
// Pull, a lane looking for due retries itself, keeps to its own clock.
const OfferSkew = 2 * time.Second

// Batcher sends batches: a pool, a connection or a transaction.
type Batcher interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// leasePin is run first in the transaction of each lease write (Claim,
// Pull, PullOrdered, Renew), in the same round trip. It does two things:
//   - Sequential scans off, as Finish has them, for the same reason (see
//     finishSQL): with a partition analyzed while nearly empty and filled
//     since, Pull's plan scanned it sequentially for each message; Claim's
//     and Renew's scanned the other, empty, partitions that way, harmless
//     only while they stay empty
//     (TestStateWritesKeepToThePrimaryKeyOnStaleStatistics).
//   - An asynchronous commit. A lease is bookkeeping whose loss costs only a
//     repeat: if Postgres itself crashes before the commit's WAL is flushed
//     (the WAL writer flushes within 3 x wal_writer_delay, 600 ms by
//     default), the claim or renewal is undone, the message is waiting as it
//     was, the result write finds no lease of its sender and leaves the
//     state alone (the attempt is still logged), and the message is sent
//     again with the same webhook-id: what a deliver crash already gives.
//     A hot endpoint's lane claims in small batches, each a commit, and
//     without this each waited for its own WAL flush. Results (Finish), the
//     attempt log and the messages' inserts commit synchronously: those are
//     what must survive.
const leasePin = `SELECT set_config('enable_seqscan', 'off', true), set_config('synchronous_commit', 'off', true)`

// leaseQuery runs leasePin and then sql in one batch (one implicit
// transaction, unless q is a transaction) and scans the rows of sql.
func leaseQuery[T any](ctx context.Context, q Batcher, sql string, args []any, scan pgx.RowToFunc[T]) ([]T, error) {
	b := &pgx.Batch{}
	b.Queue(leasePin)
	b.Queue(sql, args...)
	br := q.SendBatch(ctx, b)
	out, err := func() ([]T, error) {
		if _, err := br.Exec(); err != nil {
			return nil, err
		}
		rows, err := br.Query()
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, scan)
	}()
	// Close reads to the end of the batch: its error is the commit's.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// claimSQL finds its rows by id only (IS TRUE: see finishSQL; without it
// the planner may scan the whole waiting index for the ids, its last
// column), and each one's endpoint by endpointOf.
const claimSQL = `
	WITH c AS (
	    UPDATE message_states s SET state = 'delivering', lease_owner = $2, lease_until = $3, updated_at = now()
	    WHERE s.id = ANY($1)
	      AND (SELECT e.enabled AND (s.fifo_key IS NULL OR e.ordering <> 'fifo') FROM endpoints e WHERE ` + endpointOf + `) IS TRUE
	      AND (s.state = 'pending'
	           OR (s.state = 'failed' AND s.next_attempt_at <= $5)
	           OR (s.state = 'delivering' AND s.lease_until < $4)) IS TRUE
	    RETURNING ` + claimedState + `
	)
	SELECT ` + claimedColumns + ` FROM c ` + claimedMessage

// Pull claims up to limit of an endpoint's waiting messages, due retries
// first, then pending ones oldest first (served by the partial indexes
// message_states_failed and message_states_waiting). SKIP LOCKED lets
// several processes pull one endpoint's backlog side by side.
//
// Pending messages are taken after the cursor after (the zero cursor: from
// the oldest), and next is where the pending ones taken end. A backlog
// drained oldest first leaves the dead row versions of what it claimed at
// the head of the waiting index, until vacuum (or a scan, once no snapshot
// can see them) removes them; while a snapshot holds them (a long
// transaction, a count over the backlog), every pull from the oldest steps
// over all of them: pulls of 50 took 3 ms at the start of a 100,000
// message drain and 26 ms at its end. A pull from the cursor starts where
// the last one stopped. What it does not see (a message handed back or
// released behind the cursor, one committed late with an older created_at)
// the caller finds by starting from the oldest again now and then.
func Pull(ctx context.Context, q Batcher, endpointID string, limit int, l Lease, after PullCursor) ([]Claimed, PullCursor, error) {
	if after.CreatedAt.IsZero() {
		after.CreatedAt = time.Unix(0, 0)
	}
	type pulled struct {
		Claimed
		retry bool
	}
	rows, err := leaseQuery(ctx, q, pullSQL, []any{endpointID, limit, l.Owner, l.Now, l.Until, after.CreatedAt, after.ID},
		func(r pgx.CollectableRow) (pulled, error) {
			var p pulled
			err := r.Scan(p.dest(&p.retry)...)
			return p, err
		})
	if err != nil {
		return nil, after, err
	}
	next := after
	claimed := make([]Claimed, len(rows))
	for i, p := range rows {
		claimed[i] = p.Claimed
		if !p.retry && next.before(p.CreatedAt, p.ID) {
			next = PullCursor{CreatedAt: p.CreatedAt, ID: p.ID}
		}
	}
	return claimed, next, nil
}

// pullSQL is Pull's statement: $1 endpoint, $2 limit, $3 owner, $4 now,
// $5 lease until, ($6, $7) the cursor.
const pullSQL = `
	WITH due AS (
	    SELECT id FROM message_states WHERE endpoint_id = $1 AND state = 'failed' AND next_attempt_at <= $4
	    ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED
	), waiting AS (
	    SELECT id FROM message_states WHERE endpoint_id = $1 AND state = 'pending' AND (created_at, id) > ($6, $7)
	    ORDER BY created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
	), next AS (
	    (SELECT id, true AS retry FROM due) UNION ALL (SELECT id, false FROM waiting) LIMIT $2
	), c AS (
	    UPDATE message_states s SET state = 'delivering', lease_owner = $3, lease_until = $5, updated_at = now()
	    FROM next
	    WHERE s.id = next.id AND (SELECT e.enabled FROM endpoints e WHERE e.id = $1)
	    RETURNING ` + claimedState + `, next.retry
	)
	SELECT ` + claimedColumns + `, c.retry FROM c ` + claimedMessage

// PullCursor is where a Pull's pending messages end (created_at, id).
type PullCursor struct {
	CreatedAt time.Time
	ID        string
}

// IsZero reports whether the cursor is the zero one: from the oldest.
func (p PullCursor) IsZero() bool { return p.CreatedAt.IsZero() && p.ID == "" }

// before reports whether the cursor comes before (at, id).
func (p PullCursor) before(at time.Time, id string) bool {
	return p.CreatedAt.Before(at) || (p.CreatedAt.Equal(at) && p.ID < id)
}

// pullOrderedSQL claims, per group ($2 the keys), its first $3 waiting
// messages in chain order; a message is taken when it and every one
// before it may be claimed. $1 endpoint, $4 now, $5 owner, $6 lease until.
const pullOrderedSQL = `
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
	    FROM pick
	    WHERE s.id = pick.id AND (SELECT e.enabled FROM endpoints e WHERE e.id = $1)
	      AND NOT EXISTS (SELECT 1 FROM endpoint_history eh WHERE eh.endpoint_id = $1 AND eh.state IN ('pending', 'running'))
	    RETURNING ` + claimedState + `, s.fifo_key, s.block_number, s.log_index, s.type
	)
	SELECT ` + claimedColumns + `, c.fifo_key, c.block_number, c.log_index, c.type FROM c ` + claimedMessage

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
		// The pin of the lease writes, for this transaction, and the lock.
		b := &pgx.Batch{}
		b.Queue(leasePin)
		b.Queue(`SELECT pg_advisory_xact_lock($1)`, fifoLockKey(endpointID))
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
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
		rows, err = tx.Query(ctx, pullOrderedSQL, endpointID, keys, limit, l.Now, l.Owner, l.Until)
		if err != nil {
			return err
		}
		claimed, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Claimed, error) {
			var c Claimed
			err := r.Scan(c.dest(&c.FIFOKey, &c.Block, &c.LogIndex, &c.Type)...)
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
func Renew(ctx context.Context, q Batcher, owner string, ids []string, until time.Time) ([]string, error) {
	return leaseQuery(ctx, q, renewSQL, []any{owner, until, ids}, pgx.RowTo[string])
}

// renewSQL finds its rows by id only (IS TRUE: see finishSQL).
const renewSQL = `
	WITH locked AS (
	    SELECT id FROM message_states WHERE id = ANY($3) AND (state = 'delivering') IS TRUE AND lease_owner = $1
	    FOR UPDATE SKIP LOCKED
	)
	UPDATE message_states s SET lease_until = $2 FROM locked WHERE s.id = locked.id
	RETURNING s.id`

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
