package hook

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// The same event re-processed after midnight (a Redis loss, minutes later)
// gets the id it got before midnight: the id's time, which picks the
// messages partition, is the block's, not the clock's.
func TestMessageIDIsTheSameAcrossAPartitionBoundary(t *testing.T) {
	block := time.Date(2026, 12, 1, 23, 59, 59, 0, time.UTC)
	before := MessageID("ep_1", "1:0xab:3", TypeLog, block, block.Add(500*time.Millisecond))
	after := MessageID("ep_1", "1:0xab:3", TypeLog, block, block.Add(20*time.Minute))
	if before != after {
		t.Fatalf("re-processed across midnight: %s then %s", before, after)
	}
	if at, ok := MessageTime(before); !ok || !at.Equal(block) {
		t.Errorf("id %s carries time %s (%v), want the block's %s", before, at, ok, block)
	}
	for _, other := range []string{
		MessageID("ep_2", "1:0xab:3", TypeLog, block, block),
		MessageID("ep_1", "1:0xab:4", TypeLog, block, block),
		MessageID("ep_1", "1:0xab:3", TypeLogRemoved, block, block),
	} {
		if other == before {
			t.Errorf("another endpoint, event or type got the same id %s", other)
		}
	}
}

// Block timestamps far from the clock (the devnet's 2023 genesis, a
// backfill of old blocks, a clock far ahead) give the start of the current
// UTC day: never a partition already dropped or not yet made.
func TestMessageIDOfAnOldOrFutureBlockTakesTheCurrentDay(t *testing.T) {
	now := time.Date(2026, 12, 1, 15, 4, 5, 0, time.UTC)
	today := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, block := range []time.Time{time.Unix(1_700_000_000, 0), now.Add(-25 * time.Hour), now.Add(2 * time.Hour), time.Unix(0, 0)} {
		id := MessageID("ep_1", "1:0xab:3", TypeLog, block, now)
		if at, _ := MessageTime(id); !at.Equal(today) {
			t.Errorf("block at %s: id time %s, want %s", block, at, today)
		}
		if block.After(now) {
			continue // later it is inside the window: it takes its own time
		}
		if again := MessageID("ep_1", "1:0xab:3", TypeLog, block, now.Add(8*time.Hour)); again != id {
			t.Errorf("block at %s: %s later the same day became %s", block, id, again)
		}
	}
	if _, ok := MessageTime("batch_01ABC"); ok {
		t.Error("MessageTime accepted a non-message id")
	}
}

// With 5-minute partitions an event re-processed in the next partition slot
// (a Redis loss, minutes later) keeps its id: inside the window (one width
// back) the id's time is the block's, so dedup does not depend on the
// partition boundary.
func TestMessageIDWidthIsTheSameAcrossANarrowPartitionBoundary(t *testing.T) {
	const w = 5 * time.Minute
	block := time.Date(2026, 12, 1, 10, 4, 58, 0, time.UTC) // 2 s before the 10:05 boundary
	first := MessageIDWidth(w, "ep_1", "1:0xab:3", TypeLog, block, block.Add(time.Second))
	for _, later := range []time.Duration{3 * time.Second, time.Minute, 4*time.Minute + 59*time.Second} {
		if again := MessageIDWidth(w, "ep_1", "1:0xab:3", TypeLog, block, block.Add(later)); again != first {
			t.Errorf("re-processed %s later, across the 10:05 boundary: %s then %s", later, first, again)
		}
	}
	if at, _ := MessageTime(first); !at.Equal(block) {
		t.Errorf("id time %s, want the block's %s", at, block)
	}
}

// With 5-minute partitions a block older than one width (or more than one
// width ahead) takes the start of now's 5-minute slot, never the start of
// the UTC day: with 10-minute retention the day's first partitions are long
// gone. The same old event processed again in the same slot keeps its id.
func TestMessageIDWidthOfAnOldBlockTakesTheCurrentSlot(t *testing.T) {
	const w = 5 * time.Minute
	now := time.Date(2026, 12, 1, 15, 4, 5, 0, time.UTC)
	slot := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	for _, block := range []time.Time{time.Unix(1_700_000_000, 0), now.Add(-6 * time.Minute), now.Add(6 * time.Minute)} {
		id := MessageIDWidth(w, "ep_1", "1:0xab:3", TypeLog, block, now)
		if at, _ := MessageTime(id); !at.Equal(slot) {
			t.Errorf("block at %s: id time %s, want now's slot %s", block, at, slot)
		}
		if block.After(now) {
			continue
		}
		if again := MessageIDWidth(w, "ep_1", "1:0xab:3", TypeLog, block, now.Add(50*time.Second)); again != id {
			t.Errorf("block at %s: %s later in the same slot became %s", block, id, again)
		}
	}
	// Inside the window the block's own time.
	in := now.Add(-4 * time.Minute)
	if at, _ := MessageTime(MessageIDWidth(w, "ep_1", "1:0xab:3", TypeLog, in, now)); !at.Equal(in) {
		t.Errorf("block 4m back: id time %s, want %s", at, in)
	}
}

// MessageID follows SetPartitionWidth; the default is a day (as before).
func TestMessageIDFollowsThePartitionWidth(t *testing.T) {
	t.Cleanup(func() { SetPartitionWidth(DefaultPartitionWidth) })
	now := time.Date(2026, 12, 1, 15, 4, 5, 0, time.UTC)
	old := now.Add(-2 * time.Hour)
	if at, _ := MessageTime(MessageID("ep_1", "e", TypeLog, old, now)); !at.Equal(old) {
		t.Errorf("default width: a block 2h back keeps its time, got %s", at)
	}
	SetPartitionWidth(15 * time.Minute)
	if at, _ := MessageTime(MessageID("ep_1", "e", TypeLog, old, now)); !at.Equal(time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)) {
		t.Errorf("15m width: a block 2h back takes now's slot 15:00, got %s", at)
	}
	if got := PartitionStart(time.Date(2026, 12, 1, 23, 59, 0, 0, time.FixedZone("x", 3600)), 8*time.Hour); !got.Equal(time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC)) {
		t.Errorf("PartitionStart of 22:59 UTC in 8h slots: %s, want 16:00 UTC", got)
	}
}

// referenceMessageID is MessageIDWidth as first written (string
// concatenation, ulid.String): the ids must not change.
func referenceMessageID(w time.Duration, endpointID, eventID, typ string, blockTime, now time.Time) string {
	back, ahead := msgWindow(w)
	t := blockTime
	if t.Before(now.Add(-back)) || t.After(now.Add(ahead)) {
		t = PartitionStart(now, w)
	}
	sum := sha256.Sum256([]byte(endpointID + "\x00" + eventID + "\x00" + typ))
	var id ulid.ULID
	copy(id[6:], sum[:10])
	if err := id.SetTime(ulid.Timestamp(t)); err != nil {
		panic(err)
	}
	return MessageIDPrefix + id.String()
}

func TestMessageIDIsUnchangedAndAllocatesOnlyItsString(t *testing.T) {
	now := time.Date(2026, 12, 1, 15, 4, 5, 0, time.UTC)
	long := strings.Repeat("e", 300) // past the stack buffer
	for i, c := range []struct{ ep, ev, typ string }{
		{"ep_01J0000000000000000000000", "31337:0x" + strings.Repeat("ab", 32) + ":7", TypeLog},
		{"ep_1", "1:0xab:3", TypeLogRemoved}, {"", "", ""}, {long, long, TypeLogFinalized}, {"ep_\x00", "\xff", "log"},
	} {
		for _, block := range []time.Time{now.Add(-time.Minute), time.Unix(1_700_000_000, 0)} {
			got := MessageIDWidth(time.Hour, c.ep, c.ev, c.typ, block, now)
			if want := referenceMessageID(time.Hour, c.ep, c.ev, c.typ, block, now); got != want {
				t.Errorf("case %d: %s, want %s", i, got, want)
			}
		}
	}
	ep, ev := "ep_01J0000000000000000000000", "31337:0x"+strings.Repeat("ab", 32)+":7"
	if n := testing.AllocsPerRun(100, func() { _ = MessageID(ep, ev, TypeLog, now, now) }); n > 1 {
		t.Fatalf("MessageID allocates %v times, want 1 (the id)", n)
	}
}
