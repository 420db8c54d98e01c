package chainstatus_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/chainstatus"
	"github.com/ethhook/ethhook/internal/testenv"
)

const chain = 31337

func TestReadGivesWhatIngestsKeysSay(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	keys := hook.Keys{Prefix: prefix}
	ctx := context.Background()
	cursor := hook.Cursor{Number: 40, Hash: "0xc40", Set: true}
	fin := hook.Finality{Safe: hook.Cursor{Number: 30, Hash: "0xc30", Set: true}}
	providers := []hook.ProviderHealth{{Provider: "wss://a.example", Health: "healthy"}, {Provider: "wss://b.example", Health: "lagging"}}
	ev := hook.Event{ID: "31337:0xb39:0", Type: hook.TypeLog, Block: hook.Block{Number: 39, Hash: "0xb39"}}
	fields, err := ev.Fields()
	if err != nil {
		t.Fatal(err)
	}
	b := rdb.B()
	cmds := []struct{ key, val string }{
		{keys.Chain(chain, "cursor"), cursor.String()},
		{keys.Chain(chain, "lease"), "host/12/abc"},
		{keys.Chain(chain, "head"), "45"},
		{keys.Chain(chain, "finality"), fin.Record()},
		{keys.Chain(chain, "providers"), hook.EncodeProviders(providers)},
	}
	for _, c := range cmds {
		if err := rdb.Do(ctx, b.Set().Key(c.key).Value(c.val).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now().Add(-time.Second)
	for range 2 {
		xadd := b.Xadd().Key(keys.Events(chain)).Id("*").FieldValue()
		for k, v := range fields {
			xadd = xadd.FieldValue(k, v)
		}
		if err := rdb.Do(ctx, xadd.Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}

	st, err := chainstatus.New(rdb, keys).Read(ctx, chain)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cursor != cursor || st.Lease != "host/12/abc" || !st.HasHead || st.Head != 45 || st.Finality != fin {
		t.Fatalf("status %+v: want cursor %v, lease, head 45, finality %v", st, cursor, fin)
	}
	if !reflect.DeepEqual(st.Providers, providers) {
		t.Fatalf("providers %+v, want %+v", st.Providers, providers)
	}
	if lag, ok := st.Lag(); !ok || lag != 5 {
		t.Fatalf("lag %d %v, want 5 (head 45, cursor 40)", lag, ok)
	}
	if st.StreamLength != 2 || !st.HasAdded || st.Added != 2 {
		t.Fatalf("stream length %d, added %d (%v), want 2 and 2", st.StreamLength, st.Added, st.HasAdded)
	}
	if !st.HasLast || st.LastBlock != 39 || st.LastAt.Before(before) || st.LastAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("newest entry block %d at %v (%v), want block 39 now", st.LastBlock, st.LastAt, st.HasLast)
	}

	// A head behind the cursor (the head key lags): no lag, not a wrap.
	if err := rdb.Do(ctx, b.Set().Key(keys.Chain(chain, "head")).Value("38").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	st, err = chainstatus.New(rdb, keys).Read(ctx, chain)
	if err != nil {
		t.Fatal(err)
	}
	if lag, ok := st.Lag(); !ok || lag != 0 {
		t.Fatalf("lag %d %v with the head behind the cursor, want 0", lag, ok)
	}
}

func TestReadOfAChainIngestNeverWroteIsUnsetNotAnError(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	st, err := chainstatus.New(rdb, hook.Keys{Prefix: prefix}).Read(context.Background(), chain)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st, chainstatus.Status{}) {
		t.Fatalf("status %+v of an unwritten chain, want the zero Status", st)
	}
	if _, ok := st.Lag(); ok {
		t.Fatal("lag known with neither head nor cursor")
	}
}

func TestReadLeavesUnreadableValuesUnset(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	keys := hook.Keys{Prefix: prefix}
	ctx := context.Background()
	for _, k := range []string{"cursor", "head", "finality", "providers"} {
		if err := rdb.Do(ctx, rdb.B().Set().Key(keys.Chain(chain, k)).Value("not-a-value").Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	st, err := chainstatus.New(rdb, keys).Read(ctx, chain)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cursor.Set || st.HasHead || st.Finality.Safe.Set || st.Finality.Finalized.Set || st.Providers != nil {
		t.Fatalf("status %+v from unreadable values, want them unset", st)
	}
}

func TestCursorReadsTheCommittedCursorAlone(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	keys := hook.Keys{Prefix: prefix}
	ctx := context.Background()
	r := chainstatus.New(rdb, keys)
	if c, err := r.Cursor(ctx, chain); err != nil || c.Set {
		t.Fatalf("cursor %v, %v before any commit, want unset and no error", c, err)
	}
	want := hook.Cursor{Number: 7, Hash: "0xc7", Set: true}
	if err := rdb.Do(ctx, rdb.B().Set().Key(keys.Chain(chain, "cursor")).Value(want.String()).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if c, err := r.Cursor(ctx, chain); err != nil || c != want {
		t.Fatalf("cursor %v, %v, want %v", c, err, want)
	}
	if err := rdb.Do(ctx, rdb.B().Set().Key(keys.Chain(chain, "cursor")).Value("7").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if c, err := r.Cursor(ctx, chain); !errors.Is(err, chainstatus.ErrBadCursor) || c.Set {
		t.Fatalf("cursor %v, %v from a malformed value, want ErrBadCursor", c, err)
	}
}
