package deliver

import (
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
)

// outage turns the failures of one dependency (Redis, Postgres) into two log
// lines per outage instead of one per failed attempt: a warning at the first
// failure (naming the operation and the error), and an info line at the
// first success after calm has passed without a failure, with how long the
// outage lasted and how many attempts failed meanwhile, by operation. Every
// deliver loop reports to the one outage of the dependency it calls, so a
// Redis restart logs two lines, whichever loops noticed it; connections
// dropping again and again inside calm count as one outage.
//
// Callers report ok after a successful call and fail after a failed one,
// but not for failures of their own making (ctx cancelled on shutdown).
type outage struct {
	log  *zap.Logger
	dep  string
	calm time.Duration
	now  func() time.Time // wall time, not the module's injectable clock

	// ended, when set, is called (under mu: it must not block) when an
	// outage ends.
	ended func()

	mu       sync.Mutex
	down     bool
	since    time.Time
	last     time.Time
	failures map[string]int // by operation
}

const outageCalm = time.Second

func newOutage(log *zap.Logger, dep string) *outage {
	return &outage{log: log, dep: dep, calm: outageCalm, now: time.Now}
}

// fail records a failed call of operation op.
func (o *outage) fail(op string, err error) {
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

// ok records a successful call; it ends an outage once calm has passed
// since its last failure.
func (o *outage) ok() {
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

// report is ok or fail by err.
func (o *outage) report(op string, err error) {
	if err != nil {
		o.fail(op, err)
		return
	}
	o.ok()
}

// isDown reports whether an outage is under way.
func (o *outage) isDown() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.down
}
