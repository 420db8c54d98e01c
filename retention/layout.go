package retention

// How partitions are cut and named: the layout (width, partitions ahead),
// the UTC day grid, the message id bound of a time, a partition's name and
// its delivery_history twin.

import (
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
)

const day = 24 * time.Hour

// Layout is how partitions are cut: Width wide (retention.partition_width),
// Ahead of them created past the current one (retention.ahead_days).
type Layout struct {
	Width time.Duration
	Ahead int
}

// LayoutOf is the layout the retention settings ask for.
func LayoutOf(cfg config.Retention) Layout {
	w := cfg.PartitionWidth
	if w == 0 {
		w = day
	}
	return Layout{Width: w, Ahead: cfg.AheadDays}
}

// IDBound is the smallest message id of time t ("msg_" and the ULID's time
// characters): every id made at t or later sorts at or after it.
func IDBound(t time.Time) string {
	var u ulid.ULID
	_ = u.SetTime(ulid.Timestamp(t)) // partition bounds are days near now
	return hook.MessageIDPrefix + u.String()[:10]
}

func dayStart(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// partitionName names the partition starting at lo: the day for one
// starting at UTC midnight (the names of one-day partitions), else the day
// and the time.
func partitionName(prefix string, lo time.Time) string {
	if lo.Equal(dayStart(lo)) {
		return prefix + "_p" + lo.Format("20060102")
	}
	return prefix + "_p" + lo.Format("20060102_1504")
}

// twin is the delivery_history partition paired with a messages partition.
func twin(messagesPartition string) string {
	return "delivery_history" + strings.TrimPrefix(messagesPartition, "messages")
}

// states is the message_states partition paired with a messages partition
// (migration 00087): the same bounds, created and dropped with it.
func states(messagesPartition string) string {
	return "message_states" + strings.TrimPrefix(messagesPartition, "messages")
}

// twins are the tables paired with a messages partition (or, for
// "messages", the parents of the pairs): its states (once migration 00087
// made message_states) and its attempts.
func twins(messagesPartition string, withStates bool) []string {
	if !withStates {
		return []string{twin(messagesPartition)}
	}
	return []string{states(messagesPartition), twin(messagesPartition)}
}

// last is the upper bound of the newest partition; with none, today.
func last(ps []partition) time.Time {
	if len(ps) == 0 {
		return dayStart(time.Now())
	}
	return ps[len(ps)-1].hi
}
