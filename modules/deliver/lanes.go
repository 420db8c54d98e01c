package deliver

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// lanes is this process's set of lanes, one per endpoint with work here. A
// lane is created on demand (a job, a hint) and removes itself when it has
// nothing left to do. Creating, reserving on and retiring a lane happen under
// mu, so nothing is promised to a lane that is going away. Lock order:
// lanes.mu, then lane.mu.
type lanes struct {
	m   *Module
	ctx context.Context // lanes run until it ends; set by Module.Run

	mu        sync.Mutex
	by        map[string]*lane
	lingering int          // lanes with nothing to do waiting laneLinger before they retire
	linger    atomic.Int64 // tests: replaces laneLinger (ns) when not 0
	restart   atomic.Int64 // tests: replaces pullRestart (ns) when not 0

	senders senders // the goroutines lanes make their attempts on
}

// A lane with nothing to do waits laneLinger for its endpoint's next
// message before it retires, at most maxLingering lanes at a time (beyond
// that an idle lane retires at once). A lingering lane costs a parked
// goroutine (a few KB of stack), the lane and a timer, so they bound the
// memory idle lanes take; 10,000 endpoints sent to once a second keep
// their lanes rather than start one per webhook.
const (
	laneLinger   = time.Second
	maxLingering = 10000
)

// lingerFor is how long an idle lane lingers.
func (ls *lanes) lingerFor() time.Duration {
	if d := ls.linger.Load(); d != 0 {
		return time.Duration(d)
	}
	return laneLinger
}

// restartAfter is how long a lane's pulls go on from their cursor.
func (ls *lanes) restartAfter() time.Duration {
	if d := ls.restart.Load(); d != 0 {
		return time.Duration(d)
	}
	return pullRestart
}

// startLinger takes one of the maxLingering places of lingering lanes.
func (ls *lanes) startLinger() bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.lingering >= maxLingering {
		return false
	}
	ls.lingering++
	return true
}

func (ls *lanes) endLinger() {
	ls.mu.Lock()
	ls.lingering--
	ls.mu.Unlock()
}

// getLocked returns the endpoint's lane, starting one if needed.
func (ls *lanes) getLocked(id string) *lane {
	l := ls.by[id]
	if l == nil {
		m := ls.m
		l = &lane{id: id, m: m, depth: m.cfg.QueuePerEndpoint, wake: make(chan struct{}, 1),
			br: breaker{threshold: m.cfg.BreakerThreshold, base: m.cfg.BreakerCooldown, cooldown: m.cfg.BreakerCooldown}}
		ls.by[id] = l
		m.sends.Add(1)
		go l.run(ls.ctx)
	}
	return l
}

// reserve promises up to want slots of the endpoint's lane to a claim.
func (ls *lanes) reserve(id string, want int) (*lane, int) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.getLocked(id)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l, l.reserveLocked(want)
}

// hint tells the endpoint's lane (started if needed) that it may have
// messages waiting in Postgres.
func (ls *lanes) hint(id string) {
	ls.mu.Lock()
	l := ls.getLocked(id)
	ls.mu.Unlock()
	l.hint()
}

// retire removes a lane that has nothing to do: nothing queued, in flight
// or reserved, no pull under way, and no backlog suspected (unless forget:
// a disabled endpoint's backlog waits in Postgres for it to be enabled).
func (ls *lanes) retire(l *lane, forget bool) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) > 0 || l.inflight > 0 || l.reserved > 0 || l.pulling || (!forget && l.backlogLocked()) {
		return false // quietLocked, or with forget quiet but for the backlog
	}
	if ls.by[l.id] == l {
		delete(ls.by, l.id)
	}
	return true
}

// remove forgets a lane that stopped.
func (ls *lanes) remove(l *lane) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.by[l.id] == l {
		delete(ls.by, l.id)
	}
}

// busy lists the endpoints whose lanes suspect a backlog or are at least
// half full: their waiting messages are theirs to pull, and the sweeper
// leaves them alone.
func (ls *lanes) busy() []string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := []string{}
	for id, l := range ls.by {
		l.mu.Lock()
		if l.backlogLocked() || l.roomLocked() < l.depth/2 {
			out = append(out, id)
		}
		l.mu.Unlock()
	}
	return out
}
