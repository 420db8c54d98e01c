package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/modules/devnet"
)

// With process's group on the stream and nobody acknowledging, ingest stops
// at ingest.stream_max_len unacknowledged entries instead of trimming them;
// once they are acknowledged it goes on, and the group ends up having
// received every canonical log exactly once: none was trimmed unread.
func TestIngestHoldsBackInsteadOfTrimmingUnreadEntries(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 61, LogsPerBlock: 100, FixedLogs: true})
	e.cfg.Ingest.StreamMaxLen = 1000
	ctx := context.Background()
	key := hook.Keys{Prefix: e.prefix}.Events(testChainID)
	if err := e.rdb.Do(ctx, e.rdb.B().XgroupCreate().Key(key).Group(hook.EventsGroup).Id("0").Mkstream().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	e.node.Mine(40) // 4,000 logs; the backfill commits most of them at once, past the limit
	r := e.start(nil)
	heldBack := r.m.met.heldBack.With(chainLabelValues(e.chain.Name, e.chain.ID))
	eventually(t, 30*time.Second, "ingest to hold back", func() bool { return testutil.ToFloat64(heldBack) == 1 })
	xlen := func() int64 {
		n, err := e.rdb.Do(ctx, e.rdb.B().Xlen().Key(key).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	held := xlen()
	if held < 1000 || held >= 4000 {
		t.Fatalf("%d entries when held back: want at least the limit (1,000) and not the whole chain", held)
	}
	time.Sleep(time.Second) // ingest would commit the rest here without the hold, or trim
	if n := xlen(); n != held {
		t.Fatalf("stream went from %d to %d entries while held back", held, n)
	}

	// Process catches up: read and acknowledge everything, as it would.
	got := map[string]int{}
	eventually(t, 60*time.Second, "every canonical log read", func() bool {
		res, err := e.rdb.Do(ctx, e.rdb.B().Xreadgroup().Group(hook.EventsGroup, "p").Count(500).Streams().Key(key).Id(">").Build()).AsXRead()
		if err == nil {
			var ids []string
			for _, x := range res[key] {
				got[x.FieldValues["id"]]++
				ids = append(ids, x.ID)
			}
			if len(ids) > 0 {
				if err := e.rdb.Do(ctx, e.rdb.B().Xack().Key(key).Group(hook.EventsGroup).Id(ids...).Build()).Error(); err != nil {
					t.Fatal(err)
				}
			}
		}
		return len(got) == 4000
	})
	for id, n := range got {
		if n != 1 {
			t.Fatalf("entry %s read %d times", id, n)
		}
	}
	if testutil.ToFloat64(heldBack) != 0 {
		t.Fatal("still held back after process caught up")
	}
	if n := xlen(); n > 1100 {
		t.Fatalf("%d entries left after everything was acknowledged: acknowledged entries beyond 1,000 must be trimmed", n)
	}
}
