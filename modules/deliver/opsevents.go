package deliver

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/ethhook/ethhook/ops"
)

// opsTimeout bounds one operational event's queueing (two small queries
// and an XADD), so a slow Postgres cannot hold a writer or a goroutine.
const opsTimeout = 10 * time.Second

// emit queues an operational event and logs a failure; it never fails the
// caller: the event is a notice, the state change it reports is stored.
func (m *Module) emit(ctx context.Context, ev ops.Event) {
	ctx, cancel := context.WithTimeout(ctx, opsTimeout)
	defer cancel()
	if _, err := m.ops.Emit(ctx, ev); err != nil && ctx.Err() == nil {
		m.log.Warn("operational event not queued", zap.String("type", ev.Type), zap.String("event", ev.ID()), zap.Error(err))
	}
}

// emitDisabled reports an endpoint deliver just disabled, with the reason
// stored on it. The key is the endpoint and the second it was disabled.
func (m *Module) emitDisabled(ctx context.Context, id string) {
	var app, url, reason string
	var at time.Time
	if err := m.pool.QueryRow(ctx, `SELECT app_id, url, disabled_reason, updated_at FROM endpoints WHERE id = $1`, id).
		Scan(&app, &url, &reason, &at); err != nil {
		m.log.Warn("operational event endpoint.disabled: read endpoint", zapEndpoint(id), zap.Error(err))
		return
	}
	m.emit(ctx, ops.Event{Type: ops.EndpointDisabled, Key: id + ":" + strconv.FormatInt(at.Unix(), 10), Subject: id, At: at,
		Data: map[string]any{"endpoint_id": id, "app_id": app, "url": url, "reason": reason}})
}

// emitBreakerOpened reports a breaker this process opened; it runs on its
// own goroutine (the lane's lock is held where the breaker opens).
func (m *Module) emitBreakerOpened(id string, failures int, at time.Time) {
	m.emit(context.Background(), ops.Event{Type: ops.BreakerOpened, Key: fmt.Sprintf("%s:%s:%d", id, m.owner, at.UnixMilli()), Subject: id, At: at,
		Data: map[string]any{"endpoint_id": id, "consecutive_failures": failures, "process": m.owner}})
}

// emitDeadLetter reports a message that ended in the dead-letter state:
// the emit point of dead_letter.created. Operational messages that die
// report nothing (see ops.Event.Subject).
func (m *Module) emitDeadLetter(ctx context.Context, r result) {
	if ops.IsOps(r.job.webhookID) {
		return
	}
	m.emit(ctx, ops.Event{Type: ops.DeadLetterCreated, Key: r.job.id, Subject: r.job.endpointID, At: r.at,
		Data: map[string]any{"message_id": r.job.id, "endpoint_id": r.job.endpointID, "app_id": r.job.appID,
			"webhook_id": r.job.webhookID, "attempts": r.attempt, "last_status": r.a.status, "last_error": r.a.errText}})
}
