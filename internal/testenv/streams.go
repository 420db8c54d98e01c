package testenv

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/hook"
)

// PendingEvent adds an entry with fields to the events stream key and
// reads it as a consumer of process's group, so it is pending there as an
// entry process failed on would be (what deadletter.Move expects). It
// returns the entry as read.
func PendingEvent(t testing.TB, rdb rueidis.Client, key string, fields map[string]string) rueidis.XRangeEntry {
	t.Helper()
	ctx := context.Background()
	names := make([]string, 0, len(fields))
	for f := range fields {
		names = append(names, f)
	}
	sort.Strings(names)
	add := rdb.B().Xadd().Key(key).Id("*").FieldValue()
	for _, f := range names {
		add = add.FieldValue(f, fields[f])
	}
	id, err := rdb.Do(ctx, add.Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	// Plain commands, not package streams: its own tests import testenv.
	err = rdb.Do(ctx, rdb.B().XgroupCreate().Key(key).Group(hook.EventsGroup).Id("0").Mkstream().Build()).Error()
	if err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
		t.Fatal(err)
	}
	read, err := rdb.Do(ctx, rdb.B().Xreadgroup().Group(hook.EventsGroup, "test").Count(1000).Streams().Key(key).Id(">").Build()).AsXRead()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range read[key] {
		if e.ID == id {
			return e
		}
	}
	t.Fatalf("entry %s not read from %s", id, key)
	return rueidis.XRangeEntry{}
}
