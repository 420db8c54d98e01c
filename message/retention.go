package message

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/retention"
)

// ErrPastRetention: the message is older than its application's retention,
// so it was dropped (or is about to be, with its day's partition) and
// cannot be read or replayed. The admin API answers 410 Gone.
var ErrPastRetention = errors.New("past retention")

// DefaultRetention is the retention assumed when none is configured (the
// default of retention.messages).
const DefaultRetention = 30 * 24 * time.Hour

// WithRetention sets the configured retention.messages, which applies to
// applications whose plan has no retention_days of its own.
func (s *Service) WithRetention(d time.Duration) *Service {
	s.retention = d
	return s
}

func (s *Service) keep() time.Duration {
	if s.retention > 0 {
		return s.retention
	}
	return DefaultRetention
}

// goneIfPast explains a message id that was not found: when its time (the
// id's, see hook.MessageID) is before the oldest partition or before the
// configured retention, it is ErrPastRetention; otherwise hook.ErrNotFound.
// It tells nothing about other tenants: the answer follows from the id and
// the settings alone.
func (s *Service) goneIfPast(ctx context.Context, id string) error {
	at, ok := hook.MessageTime(id)
	if !ok {
		return hook.NotFound("message", id)
	}
	oldest, err := retention.OldestMessageTime(ctx, s.pool)
	if err != nil {
		return fmt.Errorf("get message %s: %w", id, err)
	}
	if at.Before(oldest) || at.Before(time.Now().Add(-s.keep())) {
		return fmt.Errorf("%w: message %s is from %s, older than the retention (retention.messages %s, or the plan's retention_days); its rows are dropped",
			ErrPastRetention, id, at.UTC().Format(time.RFC3339), s.keep())
	}
	return hook.NotFound("message", id)
}

// checkRetention refuses a found message past its application's retention
// (its plan's retention_days, else retention.messages): partitions are
// dropped at the longest retention of any plan, so it may still be stored.
func (s *Service) checkRetention(ctx context.Context, m Message) error {
	at, ok := hook.MessageTime(m.ID)
	if !ok {
		return nil // a hand-made id (messages_default): never dropped
	}
	keep, err := s.appKeep(ctx, m.AppID)
	if err != nil {
		return err
	}
	if at.Before(time.Now().Add(-keep)) {
		return fmt.Errorf("%w: message %s is from %s, older than application %s's retention of %s",
			ErrPastRetention, m.ID, at.UTC().Format(time.RFC3339), m.AppID, keep)
	}
	return nil
}

// appKeep is how long appID's messages are kept: its plan's retention_days,
// else retention.messages.
func (s *Service) appKeep(ctx context.Context, appID string) (time.Duration, error) {
	var days int
	if err := s.pool.QueryRow(ctx, `SELECT p.retention_days FROM applications a JOIN plans p ON p.id = a.plan_id WHERE a.id = $1`,
		appID).Scan(&days); err != nil {
		return 0, fmt.Errorf("retention of application %s: %w", appID, err)
	}
	if days > 0 {
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return s.keep(), nil
}

// retainedSince adds to q the condition that hides appID's messages past
// its retention: ids sort by their time (hook.MessageID), so it is a bound
// on the primary key that also prunes partitions. Hand-made ids (not
// "msg_" and a ULID) sort after every bound and are kept.
func (s *Service) retainedSince(ctx context.Context, q *query, appID string) error {
	from, err := s.retainedFrom(ctx, appID)
	if err != nil {
		return err
	}
	q.where("m.id >= %s", from)
	return nil
}

// retainedFrom is the smallest id of appID's messages within its retention
// (see retainedSince).
func (s *Service) retainedFrom(ctx context.Context, appID string) (string, error) {
	keep, err := s.appKeep(ctx, appID)
	if err != nil {
		return "", err
	}
	return retention.IDBound(time.Now().Add(-keep)), nil
}
