package deliver

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/msgstate"
)

// lane is one endpoint's delivery in this process. It holds the messages
// claimed for the endpoint and not yet sent (queue), counts its requests in
// flight and the slots reserved by claims on their way, and knows whether
// the endpoint may have more waiting in Postgres (a backlog hint). Its run
// loop sends the queue under the endpoint's caps (ConcurrencyPerEndpoint, the
// rate limit, the breaker) and, whenever it has room and suspects a backlog,
// pulls the endpoint's next messages from Postgres itself. So the jobs stream
// only announces work: a job for a full lane is acknowledged and becomes a
// hint, and one busy endpoint is limited by its concurrency, its latency and
// its rate limit, not by how often anything re-offers its messages.
//
// A lane's room is depth (QueuePerEndpoint) less what it queues, sends and
// has reserved; it pulls when at least half of that is free, so a lane
// answering quickly is refilled before its queue runs dry.
type lane struct {
	id    string
	m     *Module
	depth int
	wake  chan struct{}

	mu        sync.Mutex
	queue     []*job
	inflight  int
	reserved  int    // slots promised to claims in flight (intake's or this lane's pull)
	hinted    uint64 // backlog hints received
	cleared   uint64 // the hint a pull that came back short answered
	pulling   bool
	pullAfter time.Time // after a failed pull, not before this
	br        breaker

	// Ordered delivery (fifo.go): whether the endpoint is FIFO, the groups
	// with a message in flight here, where the next ordered pull starts.
	fifo          bool
	sendingGroups map[string]bool
	fifoCursor    string

	// Parallel pulls go on from where the last one stopped (msgstate.Pull:
	// the head of a drained backlog is dead row versions), and start from
	// the oldest again after a short pull or once cursorFrom is
	// pullRestart old, to find what came back behind the cursor.
	cursor     msgstate.PullCursor
	cursorFrom time.Time

	// When the rate limiter last held the lane back, and since when it has
	// without a break (unix ms; ratebacklog.go reads them).
	heldAt, heldSince atomic.Int64
}

// pullRestart is how long parallel pulls go on from their cursor before
// one starts from the oldest waiting message again (see lane.cursor): how
// late, at most, a message handed back or released behind the cursor is
// found while the endpoint's backlog lasts.
const pullRestart = 10 * time.Second

func (l *lane) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// roomLocked is how many more messages the lane may take.
func (l *lane) roomLocked() int { return l.depth - len(l.queue) - l.inflight - l.reserved }

// quietLocked reports whether the lane has nothing to do: nothing queued,
// in flight or reserved, no pull under way, no backlog suspected.
func (l *lane) quietLocked() bool {
	return len(l.queue) == 0 && l.inflight == 0 && l.reserved == 0 && !l.pulling && !l.backlogLocked()
}

// backlogLocked reports whether a backlog is suspected.
func (l *lane) backlogLocked() bool { return l.hinted != l.cleared }

// reserveLocked promises up to want slots to a claim; what does not fit
// becomes a backlog hint (the lane will pull those messages itself).
func (l *lane) reserveLocked(want int) int {
	k := max(0, min(want, l.roomLocked()))
	l.reserved += k
	if k < want {
		l.hinted++
	}
	return k
}

// settle ends a reservation of n slots with the jobs claimed for it.
func (l *lane) settle(n int, jobs []*job) {
	l.mu.Lock()
	l.reserved -= n
	l.queue = append(l.queue, jobs...)
	l.mu.Unlock()
	l.poke()
}

// hint says the endpoint may have messages waiting in Postgres.
func (l *lane) hint() {
	l.mu.Lock()
	l.hinted++
	l.mu.Unlock()
	l.poke()
}

// run sends the lane's messages until ctx ends or the lane has nothing left
// to do: at most ConcurrencyPerEndpoint at a time, within the endpoint's rate
// limit, while its breaker allows, taking a slot of the process-wide (FIFO,
// so fair) semaphore per request.
func (l *lane) run(ctx context.Context) {
	defer l.m.sends.Done()
	m := l.m
	idle := time.NewTimer(time.Hour)
	defer idle.Stop()
	// wait blocks until the lane is poked, also (when not nil) until more
	// may be held, or at most d: a safety net, never the hot path, which
	// runs on pokes. timedOut says whether d ran out.
	timedOut := false
	wait := func(d time.Duration, holdRoom <-chan struct{}) bool {
		idle.Reset(d)
		defer idle.Stop()
		timedOut = false
		select {
		case <-ctx.Done():
			return false
		case <-l.wake:
		case <-holdRoom:
		case <-idle.C:
			timedOut = true
		}
		return true
	}
	// A lane with nothing to do lingers for laneLinger before it retires,
	// so an endpoint sent to every second or so keeps its lane (its
	// goroutine, timer, breaker) instead of starting and tearing one down
	// per webhook.
	defer l.drop()
	for ctx.Err() == nil {
		ep, err := m.endpoints.get(ctx, l.id)
		if err != nil {
			if ctx.Err() == nil {
				m.pgOut.Fail("load endpoint", err)
			}
			if !wait(time.Second, nil) {
				return
			}
			continue
		}
		if ep.missing || !ep.enabled {
			// Queued messages go back to pending and wait there; the
			// change that enables the endpoint again hints a new lane.
			l.handBackQueue(ctx)
			if m.lanes.retire(l, true) || !wait(time.Second, nil) {
				return
			}
			continue
		}
		if ep.fifo != l.fifo {
			// Ordered messages are only pulled (intake does not claim
			// them): a lane turning FIFO looks for them at once.
			l.mu.Lock()
			l.fifo = ep.fifo
			l.hinted++
			l.mu.Unlock()
		}
		holdRoom := l.maybePull(ctx)
		l.mu.Lock()
		next := l.nextLocked()
		if next < 0 || l.inflight >= m.cfg.ConcurrencyPerEndpoint {
			quiet := l.quietLocked()
			l.mu.Unlock()
			if quiet {
				if !m.lanes.startLinger() {
					if m.lanes.retire(l, false) {
						return
					}
				} else {
					ok := wait(m.lanes.lingerFor(), holdRoom)
					m.lanes.endLinger()
					// Retire as soon as the linger runs out, before the
					// loop reads the endpoint again (by then its cache entry
					// may be stale: a query to load it for nothing).
					if !ok || timedOut && m.lanes.retire(l, false) {
						return
					}
					continue
				}
			}
			if !wait(l.nextPullIn(time.Minute), holdRoom) {
				return
			}
			continue
		}
		ok, d := l.br.allow(m.now())
		l.mu.Unlock()
		if !ok {
			// Re-check at least every second rather than sleeping the whole
			// cooldown: the clock may jump (an injected clock in tests, NTP).
			if !wait(min(max(d, time.Millisecond), time.Second), nil) {
				return
			}
			continue
		}
		if ep.rateLimit > 0 {
			if d := m.rateWait(ctx, ep); d > 0 {
				l.noteHeld(m.now(), m.rateRule.orDefault().holdGap)
				l.mu.Lock()
				l.br.probing = false // the probe slot was not used
				l.mu.Unlock()
				if !sleep.For(ctx, d) {
					return
				}
				continue
			}
		}
		if err := m.sem.Acquire(ctx, 1); err != nil {
			return
		}
		l.mu.Lock()
		// Only this loop takes from the queue, but a failed attempt may
		// have taken its group's messages out meanwhile (groupDone).
		next = l.nextLocked()
		if next < 0 {
			l.br.probing = false // the probe slot was not used
			l.mu.Unlock()
			m.sem.Release(1)
			continue
		}
		j := l.takeLocked(next)
		l.inflight++
		l.mu.Unlock()
		m.sends.Add(1)
		m.lanes.senders.run(ctx, func() { m.send(ctx, l, ep, j) })
	}
}

// maybePull starts a pull of the endpoint's backlog when one is suspected,
// none is under way and at least half the lane is free. When the process is
// at its holdings cap it returns a channel closed when that may change.
func (l *lane) maybePull(ctx context.Context) <-chan struct{} {
	m := l.m
	l.mu.Lock()
	defer l.mu.Unlock()
	room := l.roomLocked()
	if !l.backlogLocked() || l.pulling || room < max(1, l.depth/2) || m.now().Before(l.pullAfter) {
		return nil
	}
	holdRoom := m.hold.roomChanged()
	n := m.hold.reserve(room)
	if n == 0 {
		return holdRoom
	}
	l.pulling = true
	l.reserved += n
	if !l.cursorFrom.IsZero() && m.now().Sub(l.cursorFrom) >= m.lanes.restartAfter() {
		l.cursor, l.cursorFrom = msgstate.PullCursor{}, time.Time{}
	}
	gen, fifo, fifoCursor, cursor := l.hinted, l.fifo, l.fifoCursor, l.cursor
	m.sends.Add(1)
	go func() {
		defer m.sends.Done()
		l.pull(ctx, n, gen, fifo, fifoCursor, cursor)
	}()
	return nil
}

// nextPullIn is how long the run loop may wait, at most d: until a pull
// that failed may be tried again, when a backlog is suspected. Nothing else
// pokes the lane then, and the sweeper leaves a busy lane's backlog to it.
func (l *lane) nextPullIn(d time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.backlogLocked() || l.pulling {
		return d
	}
	// Only a retry in the future needs the timer: otherwise the lane is
	// full or pulling, and an attempt's end or the pull's pokes it.
	if r := l.pullAfter.Sub(l.m.now()); r > 0 && r < d {
		return r
	}
	return d
}

// pull claims up to n of the endpoint's waiting messages. A pull that comes
// back short clears the hint it answered (gen), unless a newer hint came in
// meanwhile: that one may be for a message committed after the pull's
// snapshot.
func (l *lane) pull(ctx context.Context, n int, gen uint64, fifo bool, fifoCursor string, cursor msgstate.PullCursor) {
	m := l.m
	var jobs []*job
	var err error
	next, nextCursor := fifoCursor, cursor
	if fifo {
		jobs, next, err = m.pullFIFO(ctx, l.id, fifoCursor, n)
	} else {
		jobs, nextCursor, err = m.pull(ctx, l.id, n, cursor)
	}
	if ctx.Err() == nil {
		m.pgOut.Report("pull messages", err)
	}
	if err == nil {
		m.unschedule(ctx, jobs)
	}
	m.hold.settle(n, jobs)
	l.mu.Lock()
	l.reserved -= n
	l.pulling = false
	l.queue = append(l.queue, jobs...)
	if fifo {
		l.fifoCursor = next
	} else if err == nil {
		switch {
		case len(jobs) < n: // nothing more after the cursor: from the oldest next time
			l.cursor, l.cursorFrom = msgstate.PullCursor{}, time.Time{}
		case l.cursorFrom.IsZero():
			l.cursor, l.cursorFrom = nextCursor, m.now()
		default:
			l.cursor = nextCursor
		}
	}
	switch {
	case err != nil:
		l.pullAfter = m.now().Add(time.Second)
	case fifo && next != "":
		// More ordering groups than one pull looks at: the next pull
		// goes on from where this one stopped, at once unless this one
		// found every group it looked at held back (then a moment later:
		// a stalled endpoint with many keys must not spin on Postgres).
		if len(jobs) == 0 {
			l.pullAfter = m.now().Add(250 * time.Millisecond)
		}
	case len(jobs) < n && l.hinted == gen && (fifo || cursor.IsZero()):
		// Short from the oldest: nothing left. (Short from a cursor, the
		// next pull starts from the oldest: something may wait behind it.)
		l.cleared = gen
	}
	l.mu.Unlock()
	l.poke()
}

// finish notes the end of an attempt: its slot is free, and the breaker
// learns what the attempt said about the endpoint.
func (l *lane) finish(h health, now time.Time) {
	m := l.m
	l.mu.Lock()
	l.inflight--
	switch h {
	case healthUp:
		if l.br.record(true, now) == -1 {
			m.met.breakersOpen.Dec()
			m.log.Info("circuit breaker closed", zapEndpoint(l.id))
		}
	case healthDown:
		if l.br.record(false, now) == 1 {
			m.met.breakersOpen.Inc()
			m.met.breakersOpened.Inc()
			m.log.Info("circuit breaker opened", zapEndpoint(l.id), zap.Int("failures", l.br.fails))
			go m.emitBreakerOpened(l.id, l.br.fails, now)
		}
	default:
		l.br.probing = false
	}
	l.mu.Unlock()
	l.poke()
}

// abandon notes an attempt cut short by shutdown: nothing is learnt.
func (l *lane) abandon(j *job) {
	l.mu.Lock()
	l.inflight--
	delete(l.sendingGroups, j.group)
	l.mu.Unlock()
}

// takeQueue empties the queue, returning its ids and payload bytes.
func (l *lane) takeQueue() ([]string, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]string, len(l.queue))
	var b int64
	for i, j := range l.queue {
		ids[i] = j.id
		b += int64(len(j.payload))
	}
	l.queue = nil
	return ids, b
}

// handBackQueue returns the queued messages of a disabled or deleted
// endpoint to pending: they are kept and sent when it is enabled again.
func (l *lane) handBackQueue(ctx context.Context) {
	ids, bytes := l.takeQueue()
	if len(ids) == 0 {
		return
	}
	l.m.hold.release(ids, bytes)
	// A failure leaves them leased, not held: the lease runs out and the
	// sweeper offers them again.
	if _, err := l.m.handBack(ctx, ids, false); ctx.Err() == nil {
		l.m.pgOut.Report("hand back messages", err)
	}
}

// drop forgets the queue when the lane stops (Run hands the messages back).
func (l *lane) drop() {
	l.m.hold.release(l.takeQueue())
	l.m.lanes.remove(l)
}
