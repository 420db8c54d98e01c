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
