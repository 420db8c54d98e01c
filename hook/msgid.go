package hook

import (
	"crypto/sha256"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
)

// MessageIDPrefix starts every message id.
const MessageIDPrefix = "msg_"

// Window of block timestamps a message id takes its time from (see
// MessageID), for partitions of width w (retention.partition_width): w back
// covers a re-processing after a Redis loss within one partition width and
// stays inside the shortest retention (which is at least w), so the id's
// partition cannot have been dropped; min(1h, w) ahead allows for clock skew
// between the chain and this machine and stays inside the partitions created
// ahead (retention creates at least two widths ahead of now).
func msgWindow(w time.Duration) (back, ahead time.Duration) {
	return w, min(time.Hour, w)
}

// DefaultPartitionWidth is the width MessageID assumes until
// SetPartitionWidth is called: one UTC day.
const DefaultPartitionWidth = 24 * time.Hour

var partitionWidth atomic.Int64

func init() { partitionWidth.Store(int64(DefaultPartitionWidth)) }

// SetPartitionWidth sets the partition width MessageID works with
// (retention.partition_width; the process sets it at start, before any id is
// made). A width that does not divide a day is refused (config validates it
// first).
func SetPartitionWidth(w time.Duration) {
	if w <= 0 || (24*time.Hour)%w != 0 {
		panic("hook.SetPartitionWidth: width must divide a day, got " + w.String())
	}
	partitionWidth.Store(int64(w))
}

// PartitionWidth is the width set by SetPartitionWidth.
func PartitionWidth() time.Duration { return time.Duration(partitionWidth.Load()) }

// PartitionStart is the start of the width-w partition slot holding t: t
// truncated to w from UTC midnight (w divides a day).
func PartitionStart(t time.Time, w time.Duration) time.Time {
	t = t.UTC()
	y, m, d := t.Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	return midnight.Add(t.Sub(midnight) / w * w)
}

// MessageID is the id of the message carrying event eventID of type typ to
// endpointID: "msg_" + a ULID whose entropy is a hash of the three (so the
// same message gets the same id however often it is inserted) and whose time
// is the block's timestamp. messages is range-partitioned by id, i.e. by
// that time, so a re-insert of the event (re-processing after a Redis loss)
// lands in the same partition on the same primary key and ON CONFLICT DO
// NOTHING deduplicates it; a global UNIQUE (endpoint_id, event_id, type) is
// impossible on a partitioned table. It uses the width set by
// SetPartitionWidth: see MessageIDWidth.
func MessageID(endpointID, eventID, typ string, blockTime, now time.Time) string {
	return MessageIDWidth(PartitionWidth(), endpointID, eventID, typ, blockTime, now)
}

// MessageIDWidth is MessageID for partitions w wide. A block timestamp
// outside [now-w, now+min(1h, w)] (a backfill of old blocks, a chain or
// devnet whose clock is not the wall clock, a test) is replaced by the start
// of now's partition slot (PartitionStart(now, w); with the default width the
// start of now's UTC day): the message is stored (and retained) from the
// partition it was made in, and deduplicates within that partition slot: the
// same old event processed again in a later slot gets a new id (a duplicate
// delivery), which takes a re-processing more than one width after the first.
// Events inside the window keep their block time, so their dedup does not
// depend on when they are processed. Old history is never refused, and never
// inserted into a partition already dropped.
func MessageIDWidth(w time.Duration, endpointID, eventID, typ string, blockTime, now time.Time) string {
	back, ahead := msgWindow(w)
	t := blockTime
	if t.Before(now.Add(-back)) || t.After(now.Add(ahead)) {
		t = PartitionStart(now, w)
	}
	// The hash input and the id are built in stack buffers: the id string
	// is the only allocation (one per message on process's hot path).
	var in [256]byte
	b := append(in[:0], endpointID...)
	b = append(b, 0)
	b = append(b, eventID...)
	b = append(b, 0)
	b = append(b, typ...)
	sum := sha256.Sum256(b)
	var id ulid.ULID
	copy(id[6:], sum[:10])
	if err := id.SetTime(ulid.Timestamp(t)); err != nil {
		// Only times past year 10889 overflow; the window rules them out.
		panic(err)
	}
	var out [len(MessageIDPrefix) + ulid.EncodedSize]byte
	copy(out[:], MessageIDPrefix)
	_ = id.MarshalTextTo(out[len(MessageIDPrefix):])
	return string(out[:])
}

// MessageTime is the time encoded in a message id (when it was made, or
// for a chain event its block's time), which decides its partition and so
// when retention drops it. ok is false for anything else.
func MessageTime(id string) (time.Time, bool) {
	s, found := strings.CutPrefix(id, MessageIDPrefix)
	if !found || len(s) != ulid.EncodedSize {
		return time.Time{}, false
	}
	u, err := ulid.ParseStrict(s)
	if err != nil {
		return time.Time{}, false
	}
	return ulid.Time(u.Time()), true
}
