package streams

import (
	"context"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
)

func TestStreamIDRoundTripsOrdersAndRefusesMalformedText(t *testing.T) {
	for _, s := range []string{"0-0", "1700000000000-3", "18446744073709551615-18446744073709551615"} {
		id, err := ParseID(s)
		if err != nil || id.String() != s {
			t.Fatalf("ParseID(%q) = %v, %v", s, id, err)
		}
	}
	if a, b := (ID{1, 9}), (ID{2, 0}); !a.Less(b) || b.Less(a) || a.Less(a) {
		t.Fatal("Less must order by ms, then seq")
	}
	if got := (ID{MS: 1700000000123}).Time(); !got.Equal(time.UnixMilli(1700000000123)) {
		t.Fatalf("Time = %v", got)
	}
	for _, bad := range []string{"", "1", "1-", "-1", "a-1", "1-b", "1-2-3"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
}

// One consumer reads a job, a second reclaims it once idle, the group's
// info follows, and acknowledging empties it.
func TestGroupPlumbingOfferReadClaimInfoAck(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	keys := hook.Keys{Prefix: prefix}
	key := keys.DeliverJobs()
	if _, found, err := Info(ctx, rdb, key, "g"); err != nil || found {
		t.Fatalf("Info before the stream exists = %v, %v; want not found", found, err)
	}
	for i := 0; i < 2; i++ {
		if err := EnsureGroup(ctx, rdb, key, "g"); err != nil {
			t.Fatalf("EnsureGroup (call %d; BUSYGROUP must be tolerated): %v", i+1, err)
		}
	}
	jobs := []hook.Job{{MessageID: "msg_1", EndpointID: "ep_1"}, {MessageID: "msg_2", EndpointID: "ep_2"}}
	if err := Offer(ctx, rdb, keys, jobs...); err != nil {
		t.Fatal(err)
	}
	if g, found, err := Info(ctx, rdb, key, "g"); err != nil || !found || !g.LagKnown || g.Lag != 2 || g.Pending != 0 || g.Caught() {
		t.Fatalf("Info after the offer = %+v, %v, %v; want lag 2", g, found, err)
	}
	got, err := Read(ctx, rdb, key, "g", "a", ">", 10, 0)
	if err != nil || len(got) != 2 {
		t.Fatalf("Read = %d entries, %v", len(got), err)
	}
	for i, e := range got {
		j, err := hook.ParseJob(e.FieldValues)
		if err != nil || j != jobs[i] {
			t.Fatalf("entry %d = %+v, %v; want %+v", i, j, err, jobs[i])
		}
	}
	g, _, err := Info(ctx, rdb, key, "g")
	if err != nil || g.Pending != 2 || g.Lag != 0 || g.LastDelivered != got[1].ID {
		t.Fatalf("Info after the read = %+v, %v", g, err)
	}
	if more, err := Read(ctx, rdb, key, "g", "a", ">", 10, 10*time.Millisecond); err != nil || len(more) != 0 {
		t.Fatalf("a blocked read of nothing = %d entries, %v; want none, no error", len(more), err)
	}
	claimed, next, err := Autoclaim(ctx, rdb, key, "g", "b", 0, "0-0", 10)
	if err != nil || len(claimed) != 2 || next != "0-0" {
		t.Fatalf("Autoclaim = %d entries, next %q, %v", len(claimed), next, err)
	}
	if own, err := Read(ctx, rdb, key, "g", "b", "0", 10, 0); err != nil || len(own) != 2 {
		t.Fatalf("b's own pending entries = %d, %v", len(own), err)
	}
	if err := Ack(ctx, rdb, key, "g", got[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := AckDelete(ctx, rdb, key, "g", got[1].ID); err != nil {
		t.Fatal(err)
	}
	if g, _, err := Info(ctx, rdb, key, "g"); err != nil || !g.Caught() {
		t.Fatalf("Info after acknowledging = %+v, %v; want caught up", g, err)
	}
	if n, err := rdb.Do(ctx, rdb.B().Xlen().Key(key).Build()).AsInt64(); err != nil || n != 1 {
		t.Fatalf("stream length %d, %v; want 1 (AckDelete deletes, Ack does not)", n, err)
	}
	if _, err := Read(ctx, rdb, key, "nogroup", "a", ">", 10, 0); !IsNoGroup(err) {
		t.Fatalf("reading a missing group: %v; want NOGROUP", err)
	}
}

// PendingIdle lists one consumer's entries idle long enough, page by page;
// Claim takes only entries idle long enough, so a second claim right after
// the first gets nothing.
func TestPendingIdleAndClaimHonourTheConsumerAndTheIdleTime(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	keys := hook.Keys{Prefix: prefix}
	key := keys.DeliverJobs()
	if err := EnsureGroup(ctx, rdb, key, "g"); err != nil {
		t.Fatal(err)
	}
	if err := Offer(ctx, rdb, keys, hook.Job{MessageID: "msg_1", EndpointID: "ep_1"}, hook.Job{MessageID: "msg_2", EndpointID: "ep_1"}); err != nil {
		t.Fatal(err)
	}
	got, err := Read(ctx, rdb, key, "g", "a", ">", 10, 0)
	if err != nil || len(got) != 2 {
		t.Fatalf("Read = %d entries, %v", len(got), err)
	}
	time.Sleep(20 * time.Millisecond)
	if ids, err := PendingIdle(ctx, rdb, key, "g", "b", 0, "-", 10); err != nil || len(ids) != 0 {
		t.Fatalf("b's pending = %v, %v; want none (a's entries are a's)", ids, err)
	}
	if ids, err := PendingIdle(ctx, rdb, key, "g", "a", time.Hour, "-", 10); err != nil || len(ids) != 0 {
		t.Fatalf("a's pending idle an hour = %v, %v; want none", ids, err)
	}
	page, err := PendingIdle(ctx, rdb, key, "g", "a", 10*time.Millisecond, "-", 1)
	if err != nil || len(page) != 1 || page[0] != got[0].ID {
		t.Fatalf("first page = %v, %v; want [%s]", page, err, got[0].ID)
	}
	if page, err = PendingIdle(ctx, rdb, key, "g", "a", 10*time.Millisecond, "("+page[0], 1); err != nil || len(page) != 1 || page[0] != got[1].ID {
		t.Fatalf("second page = %v, %v; want [%s]", page, err, got[1].ID)
	}
	if c, err := Claim(ctx, rdb, key, "g", "a", time.Hour, got[0].ID, got[1].ID); err != nil || len(c) != 0 {
		t.Fatalf("Claim of entries idle less than an hour = %d entries, %v; want none", len(c), err)
	}
	if c, err := Claim(ctx, rdb, key, "g", "a", 10*time.Millisecond, got[0].ID, got[1].ID); err != nil || len(c) != 2 || c[0].FieldValues["message_id"] != "msg_1" {
		t.Fatalf("Claim = %+v, %v; want both entries", c, err)
	}
	if c, err := Claim(ctx, rdb, key, "g", "a", 10*time.Millisecond, got[0].ID, got[1].ID); err != nil || len(c) != 0 {
		t.Fatalf("a second Claim at once = %d entries, %v; want none (the first reset their idle time)", len(c), err)
	}
}
