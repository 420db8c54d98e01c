// Package outage turns the failures of one dependency (Redis, Postgres)
// into two log lines per outage instead of one per failed attempt (issue 12:
// "faults log once"): a warning at the first failure, naming the operation
// and the error, and an info line at the first success after calm has
// passed without a failure, with how long the outage lasted and how many
// attempts failed meanwhile, by operation. Every loop of a module reports
// to the one Tracker of the dependency it calls, so a Redis restart logs
// two lines, whichever loops noticed it; connections dropping again and
// again inside calm count as one outage.
//
// Callers report OK after a successful call and Fail after a failed one,
// but not for failures of their own making (ctx cancelled on shutdown).
package outage

import (
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Tracker follows one dependency's outages for one module.
type Tracker struct {
	log  *zap.Logger
	dep  string
	calm time.Duration
	now  func() time.Time // wall time, not a module's injectable clock

	mu       sync.Mutex
	ended    func()
	down     bool
	since    time.Time
	last     time.Time
	failures map[string]int // by operation
}

// Calm is how long a dependency must go without a failure before a
// success ends its outage. It is longer than the period of the most
// frequent write that keeps failing while other calls succeed (deliver
// renews its liveness key every second; a full Redis refuses writes and
// answers reads): at one second, a 10 s "Redis full" was logged as up to
// five outages.
const Calm = 2 * time.Second

// New returns the Tracker of dependency dep ("redis", "postgres"); its
// lines read "<dep> unavailable" and "<dep> available again".
func New(log *zap.Logger, dep string) *Tracker {
	return &Tracker{log: log, dep: dep, calm: Calm, now: time.Now}
}

// OnEnd sets f to be called when an outage ends. It runs under the
// Tracker's lock, so it must not block or report back.
func (o *Tracker) OnEnd(f func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ended = f
}

// Fail records a failed call of operation op.
func (o *Tracker) Fail(op string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	o.last = now
	if !o.down {
		o.down, o.since, o.failures = true, now, map[string]int{}
		o.log.Warn(o.dep+" unavailable", zap.String("operation", op), zap.Error(err))
	}
	o.failures[op]++
}

// OK records a successful call; it ends an outage once calm has passed
// since its last failure.
func (o *Tracker) OK() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.down {
		return
	}
	now := o.now()
	if now.Sub(o.last) < o.calm {
		return
	}
	total := 0
	ops := make([]string, 0, len(o.failures))
	for op, n := range o.failures {
		total += n
		ops = append(ops, op)
	}
	sort.Strings(ops)
	fields := []zap.Field{zap.Int("failures", total), zap.Duration("lasted", o.last.Sub(o.since))}
	for _, op := range ops {
		fields = append(fields, zap.Int("failures."+op, o.failures[op]))
	}
	o.log.Info(o.dep+" available again", fields...)
	o.down, o.failures = false, nil
	if o.ended != nil {
		o.ended()
	}
}

// Report is OK or Fail by err.
func (o *Tracker) Report(op string, err error) {
	if err != nil {
		o.Fail(op, err)
		return
	}
	o.OK()
}

// Down reports whether an outage is under way.
func (o *Tracker) Down() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.down
}
