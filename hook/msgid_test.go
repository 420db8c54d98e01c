package hook

import (
	"testing"
	"time"
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
