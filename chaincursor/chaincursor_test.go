package chaincursor

import (
	"context"
	"testing"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
)

func TestAdvanceNeverMovesTheCursorBack(t *testing.T) {
	s := New(testenv.PG(t))
	ctx := context.Background()
	if c, err := s.Load(ctx, 1); err != nil || c.Set {
		t.Fatalf("Load before any Advance = %+v, %v; want unset", c, err)
	}
	at := func(n uint64, h string) hook.Cursor { return hook.Cursor{Number: n, Hash: h, Set: true} }
	steps := []struct {
		in, want hook.Cursor
	}{
		{at(10, "0xa"), at(10, "0xa")},
		{at(12, "0xc"), at(12, "0xc")},
		{at(11, "0xb"), at(12, "0xc")}, // an older read settling late
		{at(12, "0xd"), at(12, "0xc")}, // same height: the first stays
	}
	for _, st := range steps {
		got, err := s.Advance(ctx, 1, st.in)
		if err != nil || got != st.want {
			t.Fatalf("Advance(%s) = %s, %v; want %s", st.in, got, err, st.want)
		}
	}
	if c, err := s.Load(ctx, 1); err != nil || c != at(12, "0xc") {
		t.Fatalf("Load = %s, %v", c, err)
	}
	if c, _ := s.Load(ctx, 2); c.Set {
		t.Fatal("cursors are per chain")
	}
}
