package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/chaincursor"
	epsvc "github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/filter"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/outage"
	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/modules/ingest/rpc"
)

// History for new subscriptions: an endpoint created with from_block gets
// its matching events from that block up to the chain's committed head at
// the time its history starts (to_block). Everything after to_block reaches
// it through the live path: to_block is read in the history handover
// (chaincursor.Handover), after which process matches every events entry
// against an index that has the endpoint, however late its NOTIFY. Blocks
// both paths cover are harmless: messages are unique per (endpoint, event,
// type).
//
// The historian runs per chain in ingest (which owns the chain's node
// connections), once across all processes (a Postgres advisory lock per
// chain), on its own connection so the live session never waits behind a
// ranged request. It fetches with eth_getLogs filtered by the endpoint's
// addresses and topics, sized by the same span logic as backfill, and
// publishes each event (the same JSON as the live path, appendEventJSON) to
// the chain's history stream followed by a progress mark; process makes
// them messages with the live payload builder and records the marks in
// endpoint_history (durable progress a restart resumes from).

// HistoryOptions tune the historian (zero values take the defaults).
type HistoryOptions struct {
	// Grace is no longer used (the handover is a point in the stream,
	// chaincursor.Handover); kept so callers that set it still build.
	Grace time.Duration
	// MaxQueued bounds the history stream: the historian waits while
	// process has this many entries to handle (default 10,000).
	MaxQueued int64
	// Poll is how often an idle historian looks for work (default 1s).
	Poll time.Duration
	// MaxEvents fails a history with more events (default
	// endpoint.MaxHistoryEvents; tests lower it).
	MaxEvents int64
}

func (o HistoryOptions) withDefaults() HistoryOptions {
	if o.Grace <= 0 {
		o.Grace = 2 * time.Second
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 10_000
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.MaxEvents <= 0 || o.MaxEvents > epsvc.MaxHistoryEvents {
		o.MaxEvents = epsvc.MaxHistoryEvents
	}
	return o
}

// historyFailures is how many failed fetches in a row fail a history.
const historyFailures = 8

func historyLockKey(chainID uint64) int64 { return int64(0x68697374)<<32 | int64(chainID&0xffffffff) }

// historian runs the histories of one chain.
type historian struct {
	r    *chainRunner
	pool *pgxpool.Pool
	opt  HistoryOptions
	log  *zap.Logger
	key  string // the history stream
	span span
	conn caller
	ws   *rpc.WS
	// published: histories whose every block this historian published;
	// process finishing them sets state done.
	published map[string]bool
}

func newHistorian(r *chainRunner, pool *pgxpool.Pool, opt HistoryOptions) *historian {
	maxRange := r.ing.MaxLogRange
	if r.ch.MaxLogRange > 0 {
		maxRange = r.ch.MaxLogRange
	}
	return &historian{
		r: r, pool: pool, opt: opt, log: r.log.With(zap.String("part", "history")),
		key: r.st.keys.History(r.ch.ID), span: newSpan(maxRange, answerBudget(r.ing.MaxMessageBytes)),
		published: map[string]bool{},
	}
}

// run holds the chain's history lock and works until ctx ends.
func (h *historian) run(ctx context.Context) {
	for ctx.Err() == nil {
		err := h.locked(ctx)
		if ctx.Err() != nil {
			break
		}
		switch {
		case err == nil:
			h.r.out.Postgres.OK()
		case outage.FromPostgres(err):
			h.r.out.Postgres.Fail("run histories", err) // an outage: logged once
		default:
			h.log.Warn("historian stopped; starting again", zap.Error(err))
		}
		sleep.For(ctx, h.opt.Poll)
	}
	h.closeConn()
}

// locked takes the lock (or returns when another process has it) and
// runs histories while it holds it.
func (h *historian) locked(ctx context.Context) error {
	conn, err := h.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection for the history lock: %w", err)
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, historyLockKey(h.r.ch.ID)).Scan(&got); err != nil {
		return fmt.Errorf("take history lock: %w", err)
	}
	if !got {
		return nil // another process runs this chain's histories
	}
	defer func() {
		// Unlock on a fresh context: ctx may be done. A broken connection
		// loses the lock with it.
		uctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, historyLockKey(h.r.ch.ID)); err != nil {
			conn.Conn().Close(uctx)
		}
	}()
	for ctx.Err() == nil {
		// The lock lives with the connection: check it is still there.
		if err := conn.Ping(ctx); err != nil {
			return fmt.Errorf("history lock connection: %w", err)
		}
		worked, err := h.next(ctx)
		if err != nil {
			return err
		}
		if !worked {
			sleep.For(ctx, h.opt.Poll)
		}
	}
	return nil
}

// job is one endpoint_history row being worked on.
type job struct {
	endpointID string
	from, to   uint64
	toSet      bool
	next       uint64 // first block not yet published
	created    time.Time
	events     int64
}

// next runs the oldest unfinished history this historian has not
// published yet; it reports whether there was one.
func (h *historian) next(ctx context.Context) (bool, error) {
	skip := make([]string, 0, len(h.published))
	for id := range h.published {
		skip = append(skip, id)
	}
	var j job
	var from int64
	var to, through *int64
	err := h.pool.QueryRow(ctx, `SELECT h.endpoint_id, h.from_block, h.to_block, h.handled_through, h.events, e.created_at
		FROM endpoint_history h JOIN endpoints e ON e.id = h.endpoint_id
		WHERE h.chain_id = $1 AND h.state IN ('pending', 'running') AND NOT h.endpoint_id = ANY($2)
		ORDER BY h.created_at LIMIT 1`, int64(h.r.ch.ID), skip).Scan(&j.endpointID, &from, &to, &through, &j.events, &j.created)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("find histories to run: %w", err)
	}
	j.from, j.next = uint64(from), uint64(from)
	if to != nil {
		j.to, j.toSet = uint64(*to), true
	}
	if through != nil && *through >= from {
		j.next = uint64(*through) + 1
	}
	log := h.log.With(zap.String("endpoint", j.endpointID))
	err = h.runJob(ctx, &j, log)
	var fail *historyFailure
	switch {
	case err == nil:
		h.published[j.endpointID] = true
	case errors.As(err, &fail):
		log.Error("history failed", zap.Uint64("from_block", j.from), zap.Uint64("next_block", j.next), zap.Error(err))
		if _, uerr := h.pool.Exec(ctx, `UPDATE endpoint_history SET state = 'failed', error = $2, updated_at = now() WHERE endpoint_id = $1`,
			j.endpointID, fail.Error()); uerr != nil {
			return true, fmt.Errorf("mark history of %s failed: %w", j.endpointID, uerr)
		}
	default:
		return true, err
	}
	return true, nil
}

// historyFailure ends a history for good (its error is shown to the user).
type historyFailure struct{ msg string }

func (f *historyFailure) Error() string { return f.msg }

func failf(format string, args ...any) error { return &historyFailure{fmt.Sprintf(format, args...)} }

// runJob publishes the job's events from j.next up to its to_block.
func (h *historian) runJob(ctx context.Context, j *job, log *zap.Logger) error {
	ep, err := epsvc.LoadOne(ctx, h.pool, j.endpointID)
	if errors.Is(err, hook.ErrNotFound) {
		return nil // deleted meanwhile (its history row went with it)
	}
	if err != nil {
		return err
	}
	mt, err := filter.Compile(ep.Filter)
	if err != nil {
		return failf("filter does not compile: %v", err)
	}
	if !j.toSet {
		head, ok, err := h.committedHead(ctx)
		if err != nil || !ok {
			return errors.Join(err, errors.New("chain has no committed head yet"))
		}
		j.to, j.toSet = head, true
		if _, err := h.pool.Exec(ctx, `UPDATE endpoint_history SET to_block = $2, state = 'running', updated_at = now() WHERE endpoint_id = $1`,
			j.endpointID, int64(head)); err != nil {
			return fmt.Errorf("start history of %s: %w", j.endpointID, err)
		}
		log.Info("history started", zap.Uint64("from_block", j.from), zap.Uint64("to_block", head))
	}
	if j.to >= j.from && j.to-j.from >= epsvc.MaxHistoryBlocks {
		return failf("from_block %d is %d blocks before the head %d; at most %d (MaxHistoryBlocks)", j.from, j.to-j.from, j.to, epsvc.MaxHistoryBlocks)
	}
	if j.next > j.to {
		// Nothing (more) to fetch: one final mark ends it.
		return h.publish(ctx, j, nil, j.to, true)
	}
	q := logQuery(mt, ep.Filter)
	return h.fetch(ctx, j, q, log)
}

// committedHead is the chain's committed cursor in Redis, read in the
// history handover (chaincursor.Handover: every later events entry is
// matched by process against an index that has the endpoint).
func (h *historian) committedHead(ctx context.Context) (uint64, bool, error) {
	v, err := chaincursor.Handover(ctx, h.r.st.rdb, h.r.st.keys, h.r.ch.ID)
	if err != nil || v == "" {
		return 0, false, err
	}
	c, err := hook.ParseCursor(v)
	if err != nil {
		return 0, false, err
	}
	return c.Number, true, nil
}

// logQuery is the eth_getLogs filter of an endpoint: its addresses and
// topics (topic0 from topics[0] and its events together). Conditions on
// decoded arguments are applied by process, like on the live path.
func logQuery(mt *filter.Matcher, f hook.Filter) map[string]any {
	q := map[string]any{}
	if len(mt.Addresses) > 0 {
		q["address"] = mt.Addresses
	}
	topics := make([]any, 0, 4)
	if len(mt.Topic0s) > 0 {
		topics = append(topics, mt.Topic0s)
	} else {
		topics = append(topics, nil)
	}
	for i := 1; i < len(f.Topics) && i < 4; i++ {
		if len(f.Topics[i]) > 0 {
			topics = append(topics, f.Topics[i])
		} else {
			topics = append(topics, nil)
		}
	}
	for len(topics) > 0 && topics[len(topics)-1] == nil {
		topics = topics[:len(topics)-1]
	}
	if len(topics) > 0 {
		q["topics"] = topics
	}
	return q
}
