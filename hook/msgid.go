package hook

import (
	"crypto/sha256"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// MessageIDPrefix starts every message id.
const MessageIDPrefix = "msg_"

// Window of block timestamps a message id takes its time from (see
// MessageID): a day back covers any re-processing after a Redis loss and
// stays inside the shortest retention (24h), an hour ahead allows for clock
// skew between the chain and this machine.
const (
	msgTimeBack  = 24 * time.Hour
	msgTimeAhead = time.Hour
)

// MessageID is the id of the message carrying event eventID of type typ to
// endpointID: "msg_" + a ULID whose entropy is a hash of the three (so the
// same message gets the same id however often it is inserted) and whose time
// is the block's timestamp. messages is range-partitioned by id, i.e. by
// that time, so a re-insert of the event (re-processing after a Redis loss)
// lands in the same partition on the same primary key and ON CONFLICT DO
// NOTHING deduplicates it; a global UNIQUE (endpoint_id, event_id, type) is
// impossible on a partitioned table.
//
// A block timestamp outside [now-24h, now+1h] (a backfill of old blocks, a
// chain or devnet whose clock is not the wall clock, a test) is replaced by
// the start of now's UTC day: the message is stored (and retained) from the
// day it was made, and deduplicates within that day. Old history is never
// refused, and never inserted into a partition already dropped.
func MessageID(endpointID, eventID, typ string, blockTime, now time.Time) string {
	t := blockTime
	if t.Before(now.Add(-msgTimeBack)) || t.After(now.Add(msgTimeAhead)) {
		y, m, d := now.UTC().Date()
		t = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	sum := sha256.Sum256([]byte(endpointID + "\x00" + eventID + "\x00" + typ))
	var id ulid.ULID
	copy(id[6:], sum[:10])
	if err := id.SetTime(ulid.Timestamp(t)); err != nil {
		// Only times past year 10889 overflow; the window rules them out.
		panic(err)
	}
	return MessageIDPrefix + id.String()
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
