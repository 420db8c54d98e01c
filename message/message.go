// Package message is the service layer over messages and their attempt log
// (delivery_history): search, inspect, and replay. The CLI uses it now and
// the admin API later. Every call is filtered by a hook.Scope: an admin sees
// every application, a member the applications listed for them in
// application_members, an API key its one application; anything else is
// hook.ErrNotFound.
package message

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/streams"
	"github.com/ethhook/ethhook/msgstate"
	"github.com/ethhook/ethhook/tenant"
)

// ErrEndpointDisabled refuses a replay to a disabled endpoint: the
// messages would wait, unsent, until it is enabled again. It is a
// hook.ErrConflict; so is replaying a message in flight. Bad filters and
// ranges are hook.FieldErrors, anything missing or out of scope
// hook.ErrNotFound.
var ErrEndpointDisabled = hook.Conflict("the endpoint is disabled: enable it first, then replay")

// endpointEnabled reads whether endpoint id (within the scope) is enabled.
func (s *Service) endpointEnabled(ctx context.Context, sc hook.Scope, id string) error {
	var eq query
	eq.where("id = %s", id)
	eq.scope(sc, "app_id")
	var enabled bool
	var reason string
	err := s.pool.QueryRow(ctx, "SELECT enabled, disabled_reason FROM endpoints WHERE "+eq.sql(), eq.args...).Scan(&enabled, &reason)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return hook.NotFound("endpoint", id)
	case err != nil:
		return fmt.Errorf("read endpoint %s: %w", id, err)
	case !enabled:
		return fmt.Errorf("%w (endpoint %s: %s)", ErrEndpointDisabled, id, reason)
	}
	return nil
}

// Service reads and replays messages.
type Service struct {
	pool      *pgxpool.Pool
	rdb       rueidis.Client
	keys      hook.Keys
	retention time.Duration // retention.messages; 0: DefaultRetention
}

// New returns the message service. rdb and keys are used to hand replayed
// messages to deliver (hook.Keys.DeliverJobs()).
func New(pool *pgxpool.Pool, rdb rueidis.Client, keys hook.Keys) *Service {
	return &Service{pool: pool, rdb: rdb, keys: keys}
}

// Message is one webhook message (one event or batch for one endpoint).
type Message struct {
	ID            string          `json:"id"`
	AppID         string          `json:"app_id"`
	EndpointID    string          `json:"endpoint_id"`
	EventID       string          `json:"event_id"`
	Type          string          `json:"type"`
	WebhookID     string          `json:"webhook_id"`
	ChainID       int64           `json:"chain_id"`
	BlockNumber   int64           `json:"block_number"`
	BlockHash     string          `json:"block_hash"`
	TxHash        string          `json:"tx_hash"`
	Payload       json.RawMessage `json:"payload,omitempty"` // only from Get
	State         string          `json:"state"`
	Attempts      int             `json:"attempts"`
	NextAttemptAt *time.Time      `json:"next_attempt_at,omitempty"`
	LastStatus    *int            `json:"last_status,omitempty"`
	LastError     string          `json:"last_error"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
}

// Attempt is one delivery attempt from delivery_history.
type Attempt struct {
	ID              int64             `json:"id"`
	Attempt         int               `json:"attempt"`
	StatusCode      *int              `json:"status_code,omitempty"`
	ErrorClass      string            `json:"error_class"`
	Error           string            `json:"error"`
	RequestHeaders  map[string]string `json:"request_headers"`
	ResponseHeaders map[string]string `json:"response_headers"`
	ResponseExcerpt string            `json:"response_excerpt"`
	LatencyMS       int               `json:"latency_ms"`
	CreatedAt       time.Time         `json:"created_at"`
}

// Filter selects messages; zero fields do not filter. Blocks are inclusive,
// Since inclusive and Until exclusive (on created_at).
type Filter struct {
	AppID      string
	EndpointID string
	State      string
	EventID    string
	TxHash     string
	FromBlock  *int64
	ToBlock    *int64
	Since      time.Time
	Until      time.Time
	// StatusCode matches the last attempt's HTTP status (100..599).
	StatusCode int
	// Args match decoded arguments (payload decoded.args.<Name> = Value;
	// 0x values compare case-insensitively); see MaxArgs and ArgsWindow.
	Args   []Arg
	Cursor string // from Page.NextCursor
	Limit  int    // default 50, at most 500
}

// Page is one page of a listing, newest first.
type Page struct {
	Messages   []Message `json:"messages"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

var states = map[string]bool{
	hook.StatePending: true, hook.StateDelivering: true, hook.StateSucceeded: true,
	hook.StateFailed: true, hook.StateDead: true, hook.StateQuotaExceeded: true,
}

// query builds a WHERE clause with numbered arguments.
type query struct {
	conds []string
	args  []any
}

func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

func (q *query) where(format string, v ...any) {
	ph := make([]any, len(v))
	for i, x := range v {
		ph[i] = q.arg(x)
	}
	q.conds = append(q.conds, fmt.Sprintf(format, ph...))
}

// scope limits the application column col to what sc may see.
func (q *query) scope(sc hook.Scope, col string) {
	q.conds = append(q.conds, tenant.ScopeCond(sc, col, q.arg))
}

func (q *query) sql() string {
	if len(q.conds) == 0 {
		return "true"
	}
	return strings.Join(q.conds, " AND ")
}

// listColumns are read from a message (m) and its state (s, joined by
// fromMessages).
const listColumns = `m.id, m.app_id, m.endpoint_id, m.event_id, m.type, m.webhook_id, m.chain_id, m.block_number,
	m.block_hash, m.tx_hash, s.state, s.attempts, s.next_attempt_at, s.last_status, s.last_error, m.created_at, s.updated_at`

// fromMessages is msgstate.FromLive: messages with their states, of
// endpoints that exist.
const fromMessages = msgstate.FromLive

func scanMessage(row pgx.Row, withPayload bool) (Message, error) {
	var m Message
	dest := []any{&m.ID, &m.AppID, &m.EndpointID, &m.EventID, &m.Type, &m.WebhookID, &m.ChainID, &m.BlockNumber,
		&m.BlockHash, &m.TxHash, &m.State, &m.Attempts, &m.NextAttemptAt, &m.LastStatus, &m.LastError, &m.CreatedAt, &m.UpdatedAt}
	var payload []byte
	if withPayload {
		dest = append(dest, &payload)
	}
	if err := row.Scan(dest...); err != nil {
		return m, err
	}
	if withPayload {
		m.Payload = payload
	}
	return m, nil
}

// List returns messages matching f, newest first, a page at a time.
func (s *Service) List(ctx context.Context, sc hook.Scope, f Filter) (Page, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	if limit > 500 {
		limit = 500
	}
	var q query
	q.scope(sc, "m.app_id")
	if f.AppID != "" {
		q.where("m.app_id = %s", f.AppID)
	}
	if f.EndpointID != "" {
		q.where("m.endpoint_id = %s", f.EndpointID)
	}
	if f.State != "" {
		if !states[f.State] {
			return Page{}, hook.Invalid("state", fmt.Sprintf("%q is not one of pending, delivering, succeeded, failed, dead, quota_exceeded", f.State))
		}
		q.where("s.state = %s", f.State)
	}
	if f.EventID != "" {
		q.where("m.event_id = %s", f.EventID)
	}
	if f.TxHash != "" {
		q.where("m.tx_hash = %s", strings.ToLower(f.TxHash))
	}
	if f.FromBlock != nil {
		q.where("m.block_number >= %s", *f.FromBlock)
	}
	if f.ToBlock != nil {
		q.where("m.block_number <= %s", *f.ToBlock)
	}
	if !f.Since.IsZero() {
		q.where("m.created_at >= %s", f.Since)
	}
	if !f.Until.IsZero() {
		q.where("m.created_at < %s", f.Until)
	}
	// Listings of one application hide what is past its retention (its day
	// may be kept for plans with a longer one).
	if app := f.AppID; app != "" || sc.AppID != "" {
		if app == "" {
			app = sc.AppID
		}
		if err := s.retainedSince(ctx, &q, app); err != nil {
			return Page{}, err
		}
	}
	if f.StatusCode != 0 {
		if f.StatusCode < 100 || f.StatusCode > 599 {
			return Page{}, hook.Invalid("status_code", fmt.Sprintf("%d is not an HTTP status (100..599)", f.StatusCode))
		}
		q.where("s.last_status = %s", f.StatusCode)
	}
	if err := argsWhere(&q, &f, time.Now()); err != nil {
		return Page{}, err
	}
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return Page{}, err
		}
		q.where("(m.created_at, m.id) < (%s, %s)", at, id)
	}
	sqlText := "SELECT " + listColumns + fromMessages + " WHERE " + q.sql() +
		" ORDER BY m.created_at DESC, m.id DESC LIMIT " + q.arg(limit+1)
	rows, err := s.pool.Query(ctx, sqlText, q.args...)
	if err != nil {
		return Page{}, fmt.Errorf("list messages: %w", err)
	}
	msgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) { return scanMessage(r, false) })
	if err != nil {
		return Page{}, fmt.Errorf("list messages: %w", err)
	}
	p := Page{Messages: msgs}
	if len(msgs) > limit {
		p.Messages = msgs[:limit]
		last := p.Messages[limit-1]
		p.NextCursor = encodeCursor(last.CreatedAt, last.ID)
	}
	if p.Messages == nil {
		p.Messages = []Message{}
	}
	return p, nil
}

func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		at, id, ok := strings.Cut(string(b), "|")
		if ok {
			if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
				return t, id, nil
			}
		}
	}
	return time.Time{}, "", hook.Invalid("cursor", "not a cursor returned by a previous page")
}

// Get returns one message with its payload and every attempt, oldest first.
func (s *Service) Get(ctx context.Context, sc hook.Scope, id string) (Message, []Attempt, error) {
	var q query
	q.where("m.id = %s", id)
	q.scope(sc, "m.app_id")
	m, err := scanMessage(s.pool.QueryRow(ctx, "SELECT "+listColumns+", m.payload"+fromMessages+" WHERE "+q.sql(), q.args...), true)
	if errors.Is(err, pgx.ErrNoRows) {
		return Message{}, nil, s.goneIfPast(ctx, id)
	}
	if err != nil {
		return Message{}, nil, fmt.Errorf("get message %s: %w", id, err)
	}
	if err := s.checkRetention(ctx, m); err != nil {
		return Message{}, nil, err
	}
	rows, err := s.pool.Query(ctx, `
		SELECT id, attempt, status_code, error_class, error, request_headers, response_headers, response_excerpt, latency_ms, created_at
		FROM delivery_history WHERE message_id = $1 ORDER BY attempt, id`, id)
	if err != nil {
		return Message{}, nil, fmt.Errorf("attempts of message %s: %w", id, err)
	}
	atts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Attempt, error) {
		var a Attempt
		err := r.Scan(&a.ID, &a.Attempt, &a.StatusCode, &a.ErrorClass, &a.Error, &a.RequestHeaders, &a.ResponseHeaders,
			&a.ResponseExcerpt, &a.LatencyMS, &a.CreatedAt)
		return a, err
	})
	if err != nil {
		return Message{}, nil, fmt.Errorf("attempts of message %s: %w", id, err)
	}
	if atts == nil {
		atts = []Attempt{}
	}
	return m, atts, nil
}

// Replay sends one message again (any state but delivering or quota_exceeded).
func (s *Service) Replay(ctx context.Context, sc hook.Scope, id string) (Message, error) {
	var q query
	q.where("s.id = %s", id)
	q.scope(sc, "s.app_id")
	var endpointID, state, appID string
	var createdAt time.Time
	err := s.pool.QueryRow(ctx, "SELECT s.endpoint_id, s.state, s.app_id, s.created_at"+fromMessages+" WHERE "+q.sql(), q.args...).
		Scan(&endpointID, &state, &appID, &createdAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Message{}, s.goneIfPast(ctx, id)
	}
	if err != nil {
		return Message{}, fmt.Errorf("replay message %s: %w", id, err)
	}
	if err := s.checkRetention(ctx, Message{ID: id, AppID: appID, CreatedAt: createdAt}); err != nil {
		return Message{}, err
	}
	if err := s.endpointEnabled(ctx, hook.Operator, endpointID); err != nil {
		return Message{}, err
	}
	// A fresh delivery with a fresh retry schedule (msgstate.Replay); the
	// webhook-id is kept, so receivers deduplicate.
	replayed, err := msgstate.Replay(ctx, s.pool, id)
	if err != nil {
		return Message{}, fmt.Errorf("replay message %s: %w", id, err)
	}
	if !replayed {
		return Message{}, hook.Conflict(fmt.Sprintf("message %s cannot be replayed now: it is %s", id, state))
	}
	if err := s.offer(ctx, []string{id}, endpointID); err != nil {
		return Message{}, err
	}
	m, _, err := s.Get(ctx, sc, id)
	return m, err
}

// Range selects an endpoint's messages to replay: by creation time
// [Since, Until), by block [FromBlock, ToBlock], or both; at least one bound.
type Range struct {
	EndpointID string
	Since      time.Time
	Until      time.Time
	FromBlock  *int64
	ToBlock    *int64
	OnlyFailed bool // only failed or dead messages
}

// ReplayRange sends again every finished message of an endpoint in the
// range (succeeded, failed, dead; or only failed and dead) and returns how
// many. Pending and in-flight messages are left alone.
func (s *Service) ReplayRange(ctx context.Context, sc hook.Scope, r Range) (int, error) {
	if r.EndpointID == "" {
		return 0, hook.Invalid("endpoint", "an endpoint is required")
	}
	if r.Since.IsZero() && r.Until.IsZero() && r.FromBlock == nil && r.ToBlock == nil {
		return 0, hook.Invalid("since", "give a time range (since/until) or a block range")
	}
	if err := s.endpointEnabled(ctx, sc, r.EndpointID); err != nil {
		return 0, err
	}
	var appID string
	if err := s.pool.QueryRow(ctx, `SELECT app_id FROM endpoints WHERE id = $1`, r.EndpointID).Scan(&appID); err != nil {
		return 0, fmt.Errorf("replay range: %w", err)
	}
	// Nothing past the application's retention is replayed.
	minID, err := s.retainedFrom(ctx, appID)
	if err != nil {
		return 0, err
	}
	ids, err := msgstate.ReplayRange(ctx, s.pool, msgstate.Range{EndpointID: r.EndpointID, MinID: minID,
		Since: r.Since, Until: r.Until, FromBlock: r.FromBlock, ToBlock: r.ToBlock, OnlyFailed: r.OnlyFailed})
	if err != nil {
		return 0, fmt.Errorf("replay range of endpoint %s: %w", r.EndpointID, err)
	}
	total := len(ids)
	for len(ids) > 0 {
		n := min(len(ids), 1000)
		if err := s.offer(ctx, ids[:n], r.EndpointID); err != nil {
			// The messages are pending in Postgres; deliver's sweeper picks
			// them up even if these jobs are lost.
			return 0, err
		}
		ids = ids[n:]
	}
	return total, nil
}

// offer hands messages to deliver (hook.Job, streams.Offer).
func (s *Service) offer(ctx context.Context, ids []string, endpointID string) error {
	jobs := make([]hook.Job, len(ids))
	for i, id := range ids {
		jobs[i] = hook.Job{MessageID: id, EndpointID: endpointID}
	}
	if err := streams.Offer(ctx, s.rdb, s.keys, jobs...); err != nil {
		return fmt.Errorf("queue replayed messages (they stay pending and are picked up by the sweeper): %w", err)
	}
	return nil
}
