package deliver

import (
	"context"

	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
)

// send makes one attempt, decides what it leads to and hands the result to
// the writer.
func (m *Module) send(ctx context.Context, l *lane, ep *endpoint, j *job) {
	defer m.sends.Done()
	m.sending.add(j.id)
	a := m.post(ctx, ep, j)
	m.sending.done(j.id)
	m.sem.Release(1)
	// The payload is not needed any more: a retry claims the message again.
	size := int64(len(j.payload))
	j.payload = nil
	if ctx.Err() != nil {
		// Shutting down: the attempt was cut short by us, not the receiver.
		// Nothing is recorded; Run hands the message back.
		l.abandon(j)
		m.hold.release([]string{j.id}, size)
		return
	}
	now := m.now()
	o := decide(a, j.attempts+1-j.retryBase, ep.policy)
	r := result{job: j, attempt: j.attempts + 1, a: a, at: now, state: o.state, disable: o.disable}
	if j.fifo && o.state == hook.StateDead {
		r.note = fifoMovedOn
	}
	if o.state == hook.StateFailed {
		r.next = now.Add(o.after)
	}
	if o.state == hook.StateSucceeded {
		m.met.latency.Observe(now.Sub(j.createdAt).Seconds())
	}
	m.met.attempts.WithLabelValues(o.metricOutcome(), statusClass(a.status)).Inc()
	m.met.ep.attempt(j.endpointID, o.metricOutcome())
	m.met.attemptTime.Observe(a.latency.Seconds())
	if o.state != hook.StateSucceeded {
		m.log.Debug("delivery failed", zapEndpoint(j.endpointID), zap.String("message", j.id),
			zap.Int("attempt", r.attempt), zap.Int("status", a.status), zap.String("error", a.errText), zap.String("state", r.state))
	}
	m.hold.release(nil, size) // still held until the writer has recorded it
	if j.fifo {
		m.holdBack(ctx, l.groupDone(j, o.state == hook.StateFailed))
	}
	l.finish(o.health, now)
	if o.disable != "" {
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
