package deliver

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/modules/deliver/retry"
)

// job is a claimed message held by this process.
type job struct {
	id, endpointID, appID, webhookID string
	payload                          []byte
	attempts, retryBase              int
	createdAt                        time.Time
}

// epState is one endpoint's queue and caps in this process. Guarded by Module.mu.
type epState struct {
	id       string
	queue    []*job
	inflight int
	parked   bool // jobs were refused because the queue was full
	br       breaker
	wake     chan struct{}
}

func (e *epState) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// intake reads delivery jobs and claims their messages.
func (m *Module) intake(ctx context.Context, consumer string) error {
	key := m.keys.DeliverJobs()
	lastReclaim := time.Now()
	for {
		// Backpressure: with no room, jobs are not read; they wait in
		// the stream and their messages in Postgres.
		count, ok := m.waitRoom(ctx)
		if !ok {
			return ctx.Err()
		}
		res, err := m.rdb.Do(ctx, m.rdb.B().Xreadgroup().Group(consumerGroup, consumer).Count(int64(count)).Block(1000).
			Streams().Key(key).Id(">").Build()).AsXRead()
		if err != nil && !rueidis.IsRedisNil(err) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if isNoGroup(err) {
				if err := m.ensureGroup(ctx); err != nil {
					m.log.Warn("recreate consumer group", zap.Error(err))
				}
				continue
			}
			m.log.Warn("read delivery jobs", zap.Error(err))
			sleep.For(ctx, time.Second)
			continue
		}
		if entries := res[key]; len(entries) > 0 {
			m.handleEntries(ctx, entries)
		}
		// Entries read by a process that died before acknowledging them.
		if time.Since(lastReclaim) > m.cfg.LeaseTimeout {
			lastReclaim = time.Now()
			r, err := m.rdb.Do(ctx, m.rdb.B().Xautoclaim().Key(key).Group(consumerGroup).Consumer(consumer).
				MinIdleTime(fmt.Sprint(m.cfg.LeaseTimeout.Milliseconds())).Start("0-0").Count(int64(count)).Build()).ToArray()
			if err == nil && len(r) >= 2 {
				if entries, err := r[1].AsXRange(); err == nil && len(entries) > 0 {
					m.handleEntries(ctx, entries)
				}
			}
		}
	}
}

// readBatch is the most jobs one read takes.
const readBatch = 1000

// waitRoom waits until this process may hold more messages and says how
// many jobs to read: at most readBatch, the messages left under MaxHeld,
// and as many payloads of the running average size (64 KiB until payloads
// have been seen) as fit under MaxHeldMiB. The byte cap can be overshot by
// what one read's payloads exceed that average. It returns false when ctx
// ends.
func (m *Module) waitRoom(ctx context.Context) (int, bool) {
	maxBytes := int64(m.cfg.MaxHeldMiB) << 20
	for {
		m.mu.Lock()
		n := m.cfg.MaxHeld - len(m.held)
		b := maxBytes - m.heldBytes
		avg := max(m.avgPayload, 1)
		m.mu.Unlock()
		if n > 0 && b > 0 {
			return int(min(int64(readBatch), int64(n), b/avg+1)), true
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, false
		case <-m.room:
		case <-t.C:
		}
		t.Stop()
	}
}

// release forgets finished messages (ids) and payload bytes no longer in
// memory, and wakes intake. Caller does not hold m.mu.
func (m *Module) release(ids []string, bytes int64) {
	m.mu.Lock()
	m.releaseLocked(ids, bytes)
	m.mu.Unlock()
}

func (m *Module) releaseLocked(ids []string, bytes int64) {
	for _, id := range ids {
		delete(m.held, id)
	}
	m.heldBytes -= bytes
	m.met.held.Set(float64(len(m.held)))
	select {
	case m.room <- struct{}{}:
	default:
	}
}

// queued returns the ids and payload bytes of queued jobs.
func queued(q []*job) ([]string, int64) {
	ids := make([]string, len(q))
	var b int64
	for i, j := range q {
		ids[i] = j.id
		b += int64(len(j.payload))
	}
	return ids, b
}

func isNoGroup(err error) bool {
	re, ok := rueidis.IsRedisErr(err)
	return ok && strings.HasPrefix(re.Error(), "NOGROUP")
}

// handleEntries claims the messages of a batch of jobs and queues them;
// jobs for an endpoint whose queue is full are dropped (the message stays
// pending in Postgres and is offered again when the queue has room). The
// process-wide caps are kept by intake reading no more than waitRoom allows.
func (m *Module) handleEntries(ctx context.Context, entries []rueidis.XRangeEntry) {
	ids := make([]string, 0, len(entries))
	want := make([]string, 0, len(entries))
	m.mu.Lock()
	room := map[string]int{}
	for _, e := range entries {
		ids = append(ids, e.ID)
		mid, eid := e.FieldValues["message_id"], e.FieldValues["endpoint_id"]
		if mid == "" || eid == "" {
			continue
		}
		st := m.eps[eid]
		used := room[eid]
		if st != nil {
			used += len(st.queue) + st.inflight
		}
		if used >= m.cfg.QueuePerEndpoint {
			if st != nil {
				st.parked = true
			}
			continue
		}
		room[eid]++
		want = append(want, mid)
	}
	m.mu.Unlock()
	if len(want) > 0 {
		for {
			jobs, err := m.claim(ctx, want)
			if err == nil {
				m.unschedule(ctx, jobs)
				m.enqueue(ctx, jobs)
				break
			}
			if ctx.Err() != nil {
				return // not acknowledged: read again by XAUTOCLAIM, and the sweeper has the messages anyway
			}
			m.log.Warn("claim messages", zap.Error(err))
			sleep.For(ctx, time.Second)
		}
	}
	key := m.keys.DeliverJobs()
	m.rdb.DoMulti(ctx,
		m.rdb.B().Xack().Key(key).Group(consumerGroup).Id(ids...).Build(),
		m.rdb.B().Xdel().Key(key).Id(ids...).Build())
}

// claim takes ownership of messages that are pending, due for retry, or
// held by a process whose lease ran out, for enabled endpoints only.
func (m *Module) claim(ctx context.Context, ids []string) ([]*job, error) {
	now := m.now()
	rows, err := m.pool.Query(ctx, `
		UPDATE messages m SET state = 'delivering', lease_owner = $2, lease_until = $3, updated_at = now()
		FROM endpoints e
		WHERE m.id = ANY($1) AND e.id = m.endpoint_id AND e.enabled
		  AND (m.state = 'pending'
		       OR (m.state = 'failed' AND m.next_attempt_at <= $4)
		       OR (m.state = 'delivering' AND m.lease_until < $4))
		RETURNING m.id, m.endpoint_id, m.app_id, m.webhook_id, m.payload, m.attempts, m.retry_base, m.created_at`,
		ids, m.owner, now.Add(m.cfg.LeaseTimeout), now)
	if err != nil {
		return nil, fmt.Errorf("claim %d messages: %w", len(ids), err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*job, error) {
		j := &job{}
		err := r.Scan(&j.id, &j.endpointID, &j.appID, &j.webhookID, &j.payload, &j.attempts, &j.retryBase, &j.createdAt)
		return j, err
	})
	// RETURNING follows the plan, not the ids' order: queue each endpoint's
	// messages oldest first (ids are ULIDs, so they break ties in creation order).
	sort.Slice(jobs, func(a, b int) bool {
		if !jobs[a].createdAt.Equal(jobs[b].createdAt) {
			return jobs[a].createdAt.Before(jobs[b].createdAt)
		}
		return jobs[a].id < jobs[b].id
	})
	return jobs, err
}

// unschedule removes the scheduled retries of claimed messages. A message
// can be offered twice for one retry: by the promoter when it is due and by
// the sweeper when it looks overdue (the promoter lagging, or its ZADD lost).
// Whichever claims it first makes the attempt, so the other schedule entry is
// stale; it is removed before the attempt is made, so a message that ends
// succeeded or dead has nothing left in the schedule. Only the writer adds
// entries, after this attempt's result, so no live retry is removed here.
func (m *Module) unschedule(ctx context.Context, jobs []*job) {
	if len(jobs) == 0 {
		return
	}
	members := make([]string, len(jobs))
	for i, j := range jobs {
		members[i] = j.id + " " + j.endpointID
	}
	if err := m.rdb.Do(ctx, m.rdb.B().Zrem().Key(m.retriesKey()).Member(members...).Build()).Error(); err != nil && ctx.Err() == nil {
		// Harmless: the promoter offers the entry once more and its claim finds nothing to do.
		m.log.Warn("remove stale scheduled retries", zap.Int("messages", len(members)), zap.Error(err))
	}
}

// enqueue puts claimed jobs on their endpoints' queues, starting runners.
func (m *Module) enqueue(ctx context.Context, jobs []*job) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, j := range jobs {
		st := m.eps[j.endpointID]
		if st == nil {
			st = &epState{id: j.endpointID, wake: make(chan struct{}, 1),
				br: breaker{threshold: m.cfg.BreakerThreshold, base: m.cfg.BreakerCooldown, cooldown: m.cfg.BreakerCooldown}}
			m.eps[j.endpointID] = st
			m.sends.Add(1)
			go func() {
				defer m.sends.Done()
				m.runEndpoint(ctx, st)
			}()
		}
		st.queue = append(st.queue, j)
		m.held[j.id] = struct{}{}
		m.heldBytes += int64(len(j.payload))
		m.avgPayload += (int64(len(j.payload)) - m.avgPayload) / 16
		st.poke()
	}
	m.met.held.Set(float64(len(m.held)))
}

// runEndpoint sends one endpoint's queued messages: at most
// ConcurrencyPerEndpoint at a time, within its rate limit, while its breaker
// allows, taking a slot of the process-wide (FIFO, so fair) semaphore per
// request. It exits when the queue has been empty for a while.
func (m *Module) runEndpoint(ctx context.Context, st *epState) {
	idle := time.NewTimer(time.Hour)
	defer idle.Stop()
	wait := func(d time.Duration) bool {
		if d <= 0 || d > time.Minute {
			d = time.Minute
		}
		idle.Reset(d)
		select {
		case <-ctx.Done():
			return false
		case <-st.wake:
		case <-idle.C:
		}
		return true
	}
	for {
		if ctx.Err() != nil {
			m.dropQueue(st)
			return
		}
		ep, err := m.endpoints.get(ctx, st.id)
		if err != nil {
			m.log.Warn("load endpoint", zapEndpoint(st.id), zap.Error(err))
			if !wait(time.Second) {
				m.dropQueue(st)
				return
			}
			continue
		}
		if ep.missing || !ep.enabled {
			m.releaseQueue(ctx, st)
			if m.retire(st) {
				return
			}
			if !wait(time.Second) {
				m.dropQueue(st)
				return
			}
			continue
		}
		m.mu.Lock()
		if len(st.queue) == 0 {
			if st.inflight == 0 {
				delete(m.eps, st.id)
				parked := st.parked
				m.mu.Unlock()
				if parked {
					m.requestSweep(st.id)
				}
				return
			}
			m.mu.Unlock()
			if !wait(time.Minute) {
				m.dropQueue(st)
				return
			}
			continue
		}
		if st.parked && len(st.queue) < m.cfg.QueuePerEndpoint/2 {
			st.parked = false
			m.requestSweep(st.id)
		}
		if st.inflight >= m.cfg.ConcurrencyPerEndpoint {
			m.mu.Unlock()
			if !wait(time.Minute) {
				m.dropQueue(st)
				return
			}
			continue
		}
		ok, d := st.br.allow(m.now())
		m.mu.Unlock()
		if !ok {
			// Re-check at least every second rather than sleeping the whole
			// cooldown: the clock may jump (an injected clock in tests, NTP).
			if !wait(min(d, time.Second)) {
				m.dropQueue(st)
				return
			}
			continue
		}
		if ep.rateLimit > 0 {
			if d := m.rateWait(ctx, ep); d > 0 {
				m.mu.Lock()
				st.br.probing = false // the probe slot was not used
				m.mu.Unlock()
				if !sleep.For(ctx, d) {
					m.dropQueue(st)
					return
				}
				continue
			}
		}
		if err := m.sem.Acquire(ctx, 1); err != nil {
			m.dropQueue(st)
			return
		}
		m.mu.Lock()
		j := st.queue[0]
		st.queue[0] = nil
		st.queue = st.queue[1:]
		st.inflight++
		m.mu.Unlock()
		m.sends.Add(1)
		go m.send(ctx, st, ep, j)
	}
}

// retire removes an endpoint whose queue was handed back; false if jobs
// arrived meanwhile.
func (m *Module) retire(st *epState) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(st.queue) == 0 && st.inflight == 0 {
		delete(m.eps, st.id)
		return true
	}
	return false
}

// dropQueue forgets queued jobs on shutdown; Run hands them back.
func (m *Module) dropQueue(st *epState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.releaseLocked(queued(st.queue))
	st.queue = nil
	delete(m.eps, st.id)
}

// releaseQueue hands the queued messages of a disabled endpoint back as
// pending: they are kept and sent when the endpoint is enabled again.
func (m *Module) releaseQueue(ctx context.Context, st *epState) {
	m.mu.Lock()
	ids, bytes := queued(st.queue)
	m.releaseLocked(ids, bytes)
	st.queue = nil
	m.mu.Unlock()
	if len(ids) > 0 {
		if _, err := m.handBack(ctx, ids, false); err != nil {
			m.log.Warn("hand back messages of disabled endpoint", zapEndpoint(st.id), zap.Error(err))
		}
	}
}

// handBack returns claimed messages (ids, or all this process holds when
// nil) to pending, and offers them again on the jobs stream if asked.
func (m *Module) handBack(ctx context.Context, ids []string, reoffer bool) (int, error) {
	rows, err := m.pool.Query(ctx, `
		UPDATE messages SET state = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = now()
		WHERE state = 'delivering' AND lease_owner = $1 AND ($2::text[] IS NULL OR id = ANY($2))
		RETURNING id, endpoint_id`, m.owner, ids)
	if err != nil {
		return 0, fmt.Errorf("hand back messages: %w", err)
	}
	pairs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[idPair])
	if err != nil {
		return 0, fmt.Errorf("hand back messages: %w", err)
	}
	if !reoffer {
		return len(pairs), nil
	}
	return len(pairs), m.offer(ctx, pairs)
}

type idPair struct{ ID, EndpointID string }

// offer XADDs delivery jobs for messages.
func (m *Module) offer(ctx context.Context, pairs []idPair) error {
	if len(pairs) == 0 {
		return nil
	}
	cmds := make(rueidis.Commands, 0, len(pairs))
	for _, p := range pairs {
		cmds = append(cmds, m.rdb.B().Xadd().Key(m.keys.DeliverJobs()).Id("*").
			FieldValue().FieldValue("message_id", p.ID).FieldValue("endpoint_id", p.EndpointID).Build())
	}
	for _, r := range m.rdb.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("offer %d jobs: %w", len(pairs), err)
		}
	}
	return nil
}

// rateWait asks the shared GCRA limiter; 0 means send now.
func (m *Module) rateWait(ctx context.Context, ep *endpoint) time.Duration {
	interval := int64(time.Second/time.Microsecond) / int64(ep.rateLimit)
	us, err := m.gcra.Exec(ctx, m.rdb, []string{m.rateKey(ep.id)}, []string{fmt.Sprint(interval), "0"}).AsInt64()
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("rate limiter", zapEndpoint(ep.id), zap.Error(err))
		}
		return 100 * time.Millisecond // fail closed but keep going
	}
	return time.Duration(us) * time.Microsecond
}

// send makes one attempt and reports the result to the writer.
func (m *Module) send(ctx context.Context, st *epState, ep *endpoint, j *job) {
	defer m.sends.Done()
	a := m.post(ctx, ep, j)
	m.sem.Release(1)
	// The payload is not needed any more: a retry claims the message again.
	size := int64(len(j.payload))
	j.payload = nil
	if ctx.Err() != nil {
		// Shutting down: the attempt was cut short by us, not the receiver.
		// Nothing is recorded; Run hands the message back.
		m.mu.Lock()
		st.inflight--
		m.releaseLocked([]string{j.id}, size)
		m.mu.Unlock()
		return
	}
	now := m.now()
	r := result{job: j, attempt: j.attempts + 1, a: a, at: now}
	ok := a.status >= 200 && a.status < 300 && a.errClass == ""
	retryable := false
	switch {
	case ok:
		r.state = hook.StateSucceeded
		m.met.latency.Observe(now.Sub(j.createdAt).Seconds())
	case a.status == http.StatusGone:
		r.state = hook.StateDead
		r.disable = "endpoint answered 410 Gone"
	case a.status != 0:
		retryable = retry.Retryable(a.status)
	default:
		retryable = a.errClass != "ssrf" && a.errClass != "redirect" && a.errClass != "request"
	}
	if !ok && r.state == "" {
		r.state = hook.StateDead
		if retryable {
			if d, more := ep.policy.Next(r.attempt-j.retryBase, a.retryAfter); more {
				r.state = hook.StateFailed
				r.next = now.Add(d)
			}
		}
	}
	outcome := map[string]string{hook.StateSucceeded: "success", hook.StateFailed: "retry", hook.StateDead: "dead"}[r.state]
	m.met.attempts.WithLabelValues(outcome, statusClass(a.status)).Inc()
	if r.state != hook.StateSucceeded {
		m.log.Debug("delivery failed", zapEndpoint(j.endpointID), zap.String("message", j.id),
			zap.Int("attempt", r.attempt), zap.Int("status", a.status), zap.String("error", a.errText), zap.String("state", r.state))
	}
	m.mu.Lock()
	st.inflight--
	m.releaseLocked(nil, size) // still held until the writer has recorded it
	switch {
	case ok || (a.status != 0 && !retryable):
		// Any final HTTP answer shows the endpoint is up.
		if st.br.record(true, now) == -1 {
			m.met.breakersOpen.Dec()
			m.log.Info("circuit breaker closed", zapEndpoint(j.endpointID))
		}
	case retryable:
		if st.br.record(false, now) == 1 {
			m.met.breakersOpen.Inc()
			m.log.Info("circuit breaker opened", zapEndpoint(j.endpointID), zap.Int("failures", st.br.fails))
		}
	default:
		st.br.probing = false
	}
	m.mu.Unlock()
	st.poke()
	if r.disable != "" {
		m.markDisabled(j.endpointID)
	}
	m.results.put(r)
}

// markDisabled makes the local cache see the endpoint as disabled at once.
func (m *Module) markDisabled(id string) {
	m.endpoints.mu.Lock()
	if e := m.endpoints.by[id]; e != nil {
		c := *e
		c.enabled = false
		m.endpoints.by[id] = &c
	}
	m.endpoints.mu.Unlock()
}

func (m *Module) requestSweep(endpointID string) {
	select {
	case m.sweep <- endpointID:
	default:
	}
}
