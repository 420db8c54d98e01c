package process

import (
	"reflect"
	"testing"

	"github.com/ethhook/ethhook/hook"
)

func TestParseEntryAgreesWithHook(t *testing.T) {
	ev := transfer("aa", 9, 2, token, alice, bob, 77)
	ev.Block.ParentHash = blockHash("ab", 8)
	f, err := ev.Fields()
	if err != nil {
		t.Fatal(err)
	}
	cases := []map[string]string{
		f,
		{"id": f["id"], "type": hook.TypeLogRemoved, "event": f["event"]},
		{"id": "x", "type": "log", "event": `{"ID":"upper-case keys","Type":"log","Log":{"Address":"0xab"}}`},
		{"id": "x", "type": "log", "event": `not json`},
		{"id": "", "type": "bogus", "event": f["event"]},
		{"type": "log"},
	}
	for i, c := range cases {
		want, werr := hook.ParseEntry(c)
		got, gerr := parseEntry(c)
		if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(want, got) {
			t.Errorf("case %d: parseEntry = %+v, %v; hook.ParseEntry = %+v, %v", i, got, gerr, want, werr)
		}
	}
}
