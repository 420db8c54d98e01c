package deliver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/msgstate"
)

// result is one finished attempt on its way to Postgres.
type result struct {
	job     *job
	attempt int
	a       attempt
	at      time.Time
	state   string
	next    time.Time // due time of the next attempt when state is failed
	disable string    // reason to disable the endpoint (410 Gone)
	note    string    // added to the attempt's error (a FIFO lane moving on)
}

const (
	writeBatch = 1000
	writeDelay = 10 * time.Millisecond
)

// resultQueue hands finished attempts to the writer. Senders never wait on
// it (a sender's goroutine ends with its attempt); its length is bounded
// because every result in it is a held message (Module.held), and intake
// takes no new work while held is at its cap.
type resultQueue struct {
	mu     sync.Mutex
	items  []result
	closed bool
	ready  chan struct{} // poked on put
	done   chan struct{} // closed by close: wakes every writer
}

func newResultQueue() resultQueue {
	return resultQueue{ready: make(chan struct{}, 1), done: make(chan struct{})}
}

func (q *resultQueue) put(r result) {
	q.mu.Lock()
	q.items = append(q.items, r)
	q.mu.Unlock()
	q.poke()
}

func (q *resultQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.done)
	}
}

func (q *resultQueue) poke() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take moves up to len(dst) results into dst (FIFO) and reports how many,
// and whether the queue is closed.
func (q *resultQueue) take(dst []result) (int, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := copy(dst, q.items)
	rest := copy(q.items, q.items[n:])
	clear(q.items[rest:])
	q.items = q.items[:rest]
	return n, q.closed && rest == 0
}

func (q *resultQueue) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// writer stores results in batches: attempt rows, message state, usage and
// endpoint health in one transaction, then schedules retries in Redis. A
// failed write is retried until it succeeds or the module is torn down.
// Written results stop counting as held, which lets intake read more jobs.
func (m *Module) writer(ctx context.Context) error {
	batch := make([]result, writeBatch)
	for {
		n, closed := m.results.take(batch)
		if n == 0 {
			if closed {
				return nil
			}
			select {
			case <-m.results.ready:
			case <-m.results.done:
			}
			continue
		}
		if n < writeBatch && !closed {
			// Let a batch fill for a moment.
			timer := time.NewTimer(writeDelay)
		fill:
			for m.results.size() < writeBatch-n {
				select {
				case <-m.results.ready:
				case <-m.results.done:
					break fill
				case <-timer.C:
					break fill
				}
			}
			timer.Stop()
			k, _ := m.results.take(batch[n:])
			n += k
		}
		ids := make([]string, n)
		var ordered []string // FIFO endpoints with results here
		for i, r := range batch[:n] {
			ids[i] = r.job.id
			if r.job.fifo && (len(ordered) == 0 || ordered[len(ordered)-1] != r.job.endpointID) {
				ordered = append(ordered, r.job.endpointID)
			}
		}
		if err := m.writeAll(ctx, batch[:n]); err != nil {
			return err
		}
		m.hintOrdered(ordered)
		clear(batch[:n])
		m.hold.release(ids, 0)
	}
}

// writeAll writes a batch, retrying failures until ctx ends. Results for
// messages that no longer exist (their endpoint or app was deleted while the
// attempt was in flight) are not written (write finds them, errMessageGone):
// they are dropped, counted and logged once for the batch, and the rest is
// written. Anything else (Postgres away) is retried as it is.
func (m *Module) writeAll(ctx context.Context, batch []result) error {
	for {
		err := m.write(ctx, batch)
		if err == nil {
			m.pgOut.OK()
			return nil
		}
		if errors.Is(err, errMessageGone) || isPartitionGone(err) {
			kept, ferr := m.dropVanished(ctx, batch)
			if ferr == nil {
				batch = kept
				if len(batch) == 0 {
					return nil
				}
				continue
			}
			err = ferr
		}
		if ctx.Err() != nil {
			return fmt.Errorf("write %d delivery results: %w", len(batch), err)
		}
		m.pgOut.Fail("write delivery results", err)
		sleep.For(ctx, time.Second)
	}
}

// dropVanished returns the results of batch whose messages still have
// their state (reusing batch's array), counting the others as dropped.
func (m *Module) dropVanished(ctx context.Context, batch []result) ([]result, error) {
	ids := make([]string, len(batch))
	for i, r := range batch {
		ids[i] = r.job.id
	}
	// By the state, as write finds them (a deleted endpoint's messages stay
	// until the purge).
	rows, err := m.pool.Query(ctx, `SELECT id FROM message_states WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("find messages of %d results: %w", len(batch), err)
	}
	exist, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("find messages of %d results: %w", len(batch), err)
	}
	live := make(map[string]bool, len(exist))
	for _, id := range exist {
		live[id] = true
	}
	kept := batch[:0]
	endpoints := map[string]bool{}
	for _, r := range batch {
		if live[r.job.id] {
			kept = append(kept, r)
		} else {
			endpoints[r.job.endpointID] = true
		}
	}
	dropped := len(batch) - len(kept)
	clear(batch[len(kept):])
	if dropped > 0 {
		m.met.dropped.WithLabelValues("message_gone").Add(float64(dropped))
		m.log.Info("dropped results of deleted messages", zap.Int("results", dropped),
			zap.Int("written", len(kept)), zap.Strings("endpoints", keys(endpoints)))
	}
	return kept, nil
}

// errMessageGone: a result of the batch is of a message deleted while its
// attempt was in flight.
var errMessageGone = errors.New("a message of the batch is gone")

// isPartitionGone: 23514 "no partition": the attempts partition of a
// result's message was dropped by retention (only without a default
// partition to take it).
func isPartitionGone(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23514" && strings.HasPrefix(pe.Message, "no partition") // check_violation
}

func (m *Module) write(ctx context.Context, batch []result) error {
	var (
		hist               [][]any
		res                msgstate.Results
		usage              = map[string]int64{}
		succeeded, failing = map[string]bool{}, map[string]bool{}
		disable            = map[string]string{}
		retries            []result
		now                = m.now()
	)
	var buf []byte // the batch's attempt headers as JSON, one after the other
	for _, r := range batch {
		j, a := r.job, r.a
		n := len(buf)
		buf = appendHeadersJSON(buf, a.reqHeaders)
		reqH := string(buf[n:])
		n = len(buf)
		buf = appendHeadersJSON(buf, a.respHeaders)
		respH := string(buf[n:])
		var status *int32
		if a.status != 0 {
			s := int32(a.status)
			status = &s
		}
		errText := a.errText
		if r.note != "" {
			errText = strings.TrimPrefix(errText+"; "+r.note, "; ")
		}
		hist = append(hist, []any{j.id, j.endpointID, j.appID, int32(r.attempt), status, a.errClass, errText,
			reqH, respH, a.excerpt, int32(a.latency.Milliseconds()), r.at})
		res.IDs = append(res.IDs, j.id)
		res.States = append(res.States, r.state)
		res.Attempts = append(res.Attempts, int32(r.attempt))
		res.Statuses = append(res.Statuses, status)
		res.Errors = append(res.Errors, a.errText)
		if r.state == hook.StateFailed {
			t := r.next
			res.Nexts = append(res.Nexts, &t)
			retries = append(retries, r)
		} else {
			res.Nexts = append(res.Nexts, nil)
		}
		if r.state == hook.StateSucceeded {
			usage[j.appID]++
			succeeded[j.endpointID] = true
			delete(failing, j.endpointID)
		} else {
			failing[j.endpointID] = true
			delete(succeeded, j.endpointID)
		}
		if r.disable != "" {
			disable[j.endpointID] = r.disable
		}
	}
	var disabled []string
	err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		// Only the lease holder updates (msgstate.Finish): if our lease ran
		// out and another process claimed the message, its result wins.
		recorded, err := msgstate.Finish(ctx, tx, m.owner, &res)
		if err != nil {
			return fmt.Errorf("update messages: %w", err)
		}
		if recorded < int64(len(res.IDs)) {
			// A lease lost (the attempt is still logged) or a message
			// whose endpoint was deleted: its state went at once
			// (msgstate.Forget), the message itself goes later with the
			// purge, so the state says. That one is dropped, not logged.
			var live int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM message_states WHERE id = ANY($1)`, res.IDs).Scan(&live); err != nil {
				return fmt.Errorf("find messages of %d results: %w", len(res.IDs), err)
			}
			if live < len(res.IDs) {
				return errMessageGone
			}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"delivery_history"},
			[]string{"message_id", "endpoint_id", "app_id", "attempt", "status_code", "error_class", "error",
				"request_headers", "response_headers", "response_excerpt", "latency_ms", "created_at"},
			pgx.CopyFromRows(hist)); err != nil {
			return fmt.Errorf("insert attempts: %w", err)
		}
		if len(usage) > 0 {
			// Sorted, so concurrent writers lock usage rows in one order.
			apps := keys(usage)
			counts := make([]int64, len(apps))
			for i, a := range apps {
				counts[i] = usage[a]
			}
			if _, err := tx.Exec(ctx, `
				INSERT INTO usage (app_id, month, deliveries)
				SELECT a, date_trunc('month', now() AT TIME ZONE 'UTC')::date, n FROM unnest($1::text[], $2::bigint[]) AS u(a, n)
				ON CONFLICT (app_id, month) DO UPDATE SET deliveries = usage.deliveries + EXCLUDED.deliveries`,
				apps, counts); err != nil {
				return fmt.Errorf("count usage: %w", err)
			}
		}
		if len(succeeded) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE endpoints SET failing_since = NULL WHERE id = ANY($1) AND failing_since IS NOT NULL`,
				keys(succeeded)); err != nil {
				return fmt.Errorf("clear failing_since: %w", err)
			}
		}
		if len(failing) > 0 {
			rows, err := tx.Query(ctx, `
				UPDATE endpoints SET failing_since = COALESCE(failing_since, $2), updated_at = now(),
				       enabled = CASE WHEN COALESCE(failing_since, $2) <= $3 THEN false ELSE enabled END,
				       disabled_reason = CASE WHEN enabled AND COALESCE(failing_since, $2) <= $3
				           THEN 'failing continuously since ' || to_char(COALESCE(failing_since, $2) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
				           ELSE disabled_reason END
				WHERE id = ANY($1) AND (failing_since IS NULL OR (enabled AND failing_since <= $3))
				RETURNING id, enabled`, keys(failing), now, now.Add(-m.cfg.DisableAfter))
			if err != nil {
				return fmt.Errorf("mark failing endpoints: %w", err)
			}
			for rows.Next() {
				var id string
				var enabled bool
				if err := rows.Scan(&id, &enabled); err != nil {
					return err
				}
				if !enabled {
					disabled = append(disabled, id)
				}
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("mark failing endpoints: %w", err)
			}
		}
		for id, reason := range disable {
			tag, err := tx.Exec(ctx, `UPDATE endpoints SET enabled = false, disabled_reason = $2, updated_at = now() WHERE id = $1 AND enabled`, id, reason)
			if err != nil {
				return fmt.Errorf("disable endpoint %s: %w", id, err)
			}
			if tag.RowsAffected() > 0 {
				disabled = append(disabled, id)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Retries are scheduled after the commit: the message is failed with
	// next_attempt_at in Postgres first, so the sweeper recovers a retry whose
	// ZADD is lost.
	if len(retries) > 0 {
		cmd := m.rdb.B().Zadd().Key(m.retriesKey()).ScoreMember()
		for _, r := range retries {
			cmd = cmd.ScoreMember(float64(dueScore(r.next)), r.job.id+" "+r.job.endpointID)
		}
		// A lost ZADD is recovered by the sweeper (the message is failed
		// and overdue in Postgres).
		m.redisOut.Report("schedule retries", m.rdb.Do(ctx, cmd.Build()).Error())
	}
	for _, id := range disabled {
		m.markDisabled(id)
		m.met.disabledTotal.Inc()
		m.log.Warn("endpoint disabled", zapEndpoint(id), zap.String("reason", disable[id]))
		m.rdb.Do(ctx, m.rdb.B().Publish().Channel(m.keys.EndpointsChanged()).Message(id).Build())
	}
	for _, id := range disabled {
		m.emitDisabled(ctx, id)
	}
	for _, r := range batch {
		if r.state == hook.StateDead {
			m.emitDeadLetter(ctx, r)
		}
	}
	return nil
}

// hintOrdered tells the lanes of FIFO endpoints that results were written:
// a group whose message was in flight may be pulled again now (fifo.go).
// Their lanes may have retired meanwhile: a hint starts one.
func (m *Module) hintOrdered(endpoints []string) {
	if m.lanes.ctx == nil || m.lanes.ctx.Err() != nil {
		return // shutting down: nothing is pulled any more
	}
	for _, id := range endpoints {
		m.lanes.hint(id)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
