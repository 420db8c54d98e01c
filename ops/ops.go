// Package ops sends EthHook's own events (operational webhooks) to the
// endpoints an operator subscribed to them: an endpoint whose ops_events
// lists a type gets that type's events instead of chain logs. An event is
// a messages row plus a delivery job, exactly like a test event, so it is
// signed, retried, rate-limited, logged and replayable by the one delivery
// pipeline; there is no second sender.
//
// Emitting is idempotent: the event id is derived from what happened (the
// endpoint and the moment it was disabled, the application and month of a
// quota, ...), and messages' UNIQUE (endpoint_id, event_id, type) drops a
// second emission of the same event by another process.
package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/streams"
	"github.com/ethhook/ethhook/msgstate"
)

// The operational event types.
const (
	EndpointDisabled  = "endpoint.disabled"   // deliver disabled an endpoint (failing continuously, or a final answer)
	BreakerOpened     = "breaker.opened"      // a deliver process opened an endpoint's circuit breaker
	QuotaReached      = "quota.reached"       // an application reached its monthly quota (once a month)
	IngestStalled     = "ingest.stalled"      // a chain's cursor did not move for admin.ingest_stall_after
	DeadLetterCreated = "dead_letter.created" // a message ended in the dead-letter state (emit point: EmitDeadLetter)
	// An endpoint's rate limit holds a backlog back, and that backlog has
	// drained (or the limiter stopped holding it): once each per episode,
	// see RateLimited and modules/deliver/ratebacklog.go.
	EndpointRateLimited      = "endpoint.rate_limited"
	EndpointRateLimitCleared = "endpoint.rate_limit_cleared"
)

// Types lists every operational event type, for validation and docs.
var Types = []string{EndpointDisabled, BreakerOpened, QuotaReached, IngestStalled, DeadLetterCreated,
	EndpointRateLimited, EndpointRateLimitCleared}

// Bounds: an endpoint subscribes to at most len(Types) types; one event
// goes to at most MaxSubscribers endpoints (the operator's few), and its
// data is at most MaxDataBytes of JSON.
const (
	MaxSubscribers = 20
	MaxDataBytes   = 8 << 10
)

// Valid reports whether typ is an operational event type.
func Valid(typ string) bool { return slices.Contains(Types, typ) }

// Event is one operational event.
type Event struct {
	Type string
	// Key identifies what happened, so that two processes reporting the
	// same occurrence make one webhook (e.g. "ep_1:1767225600" for an
	// endpoint disabled at that second).
	Key string
	// Subject is the endpoint the event is about, if any. Events about an
	// operational endpoint are not sent at all (two failing ones would feed
	// each other); its metrics and alerts still show it.
	Subject string
	// Data is the event's data object: a map, or one of the typed data
	// structs of this package (RateLimited, RateLimitCleared), which the
	// OpenAPI document's webhooks section is generated from.
	Data any
	At   time.Time
}

// IsOps reports whether a webhook id is an operational event's: deliver
// emits no dead_letter.created for those (see Subject).
func IsOps(webhookID string) bool { return strings.HasPrefix(webhookID, "ops:") }

// ID is the event's id and webhook-id: "ops:<type>:<key>".
func (e Event) ID() string { return "ops:" + e.Type + ":" + e.Key }

// Payload is the webhook body: the Standard Webhooks shape of the other
// payloads (id, type, api_version), the time, and the event's data.
func (e Event) Payload() ([]byte, error) {
	b, err := json.Marshal(map[string]any{
		"id": e.ID(), "type": e.Type, "api_version": "1",
		"timestamp": e.At.UTC().Format(time.RFC3339), "data": e.Data,
	})
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", e.Type, err)
	}
	if len(b) > MaxDataBytes {
		return nil, fmt.Errorf("%s event of %d bytes is above %d", e.Type, len(b), MaxDataBytes)
	}
	return b, nil
}

// Emitter writes operational events for their subscribers.
type Emitter struct {
	pool *pgxpool.Pool
	rdb  rueidis.Client
	keys hook.Keys
}

// New returns an emitter; rdb may be nil (deliver's sweep then finds the
// pending messages).
func New(pool *pgxpool.Pool, rdb rueidis.Client, keys hook.Keys) *Emitter {
	return &Emitter{pool: pool, rdb: rdb, keys: keys}
}

// notifyTimeout bounds the queueing of one event by Notify (two small
// queries and an XADD), so a slow Postgres cannot hold the caller.
const notifyTimeout = 10 * time.Second

// Notify is Emit for callers that must not fail on it: the event reports a
// state change that is stored anyway, so a failure is logged on log, not
// returned.
func (o *Emitter) Notify(ctx context.Context, log *zap.Logger, ev Event) {
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	if _, err := o.Emit(ctx, ev); err != nil && ctx.Err() == nil {
		log.Warn("operational event not queued", zap.String("type", ev.Type), zap.String("event", ev.ID()), zap.Error(err))
	}
}

// Emit queues ev for every enabled endpoint subscribed to its type and
// returns the ids of the messages it created (none when nobody subscribed
// or the event was emitted before).
func (o *Emitter) Emit(ctx context.Context, ev Event) ([]string, error) {
	if o == nil {
		return nil, nil
	}
	if !Valid(ev.Type) {
		return nil, fmt.Errorf("ops: unknown event type %q", ev.Type)
	}
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	payload, err := ev.Payload()
	if err != nil {
		return nil, err
	}
	rows, err := o.pool.Query(ctx, `SELECT id, app_id FROM endpoints
		WHERE enabled AND $1::text = ANY(ops_events) AND id <> $2
		  AND NOT EXISTS (SELECT 1 FROM endpoints o WHERE o.id = $2 AND o.ops_events <> '{}')
		ORDER BY id LIMIT $3`, ev.Type, ev.Subject, MaxSubscribers)
	if err != nil {
		return nil, fmt.Errorf("find subscribers of %s: %w", ev.Type, err)
	}
	var subs [][2]string
	for rows.Next() {
		var ep, app string
		if err := rows.Scan(&ep, &app); err != nil {
			rows.Close()
			return nil, fmt.Errorf("find subscribers of %s: %w", ev.Type, err)
		}
		subs = append(subs, [2]string{ep, app})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find subscribers of %s: %w", ev.Type, err)
	}
	var ids []string
	var jobs []hook.Job
	for _, sub := range subs {
		id := "msg_" + ulid.Make().String()
		created, err := msgstate.CreateOne(ctx, o.pool, msgstate.One{ID: id, AppID: sub[1], EndpointID: sub[0], EventID: ev.ID(),
			Type: ev.Type, Payload: payload})
		if err != nil {
			return ids, fmt.Errorf("queue %s event %s for endpoint %s: %w", ev.Type, ev.ID(), sub[0], err)
		}
		if created {
			ids, jobs = append(ids, id), append(jobs, hook.Job{MessageID: id, EndpointID: sub[0]})
		}
	}
	if o.rdb != nil {
		if err := streams.Offer(ctx, o.rdb, o.keys, jobs...); err != nil {
			// The messages are pending in Postgres; deliver's sweep sends them.
			return ids, fmt.Errorf("queue %s event jobs (deliver's sweep will send them): %w", ev.Type, err)
		}
	}
	return ids, nil
}
