package hook

import "testing"

func TestCursorRoundTripsAndRefusesMalformedText(t *testing.T) {
	c := Cursor{Number: 42, Hash: "0xab", Set: true}
	got, err := ParseCursor(c.String())
	if err != nil || got != c {
		t.Fatalf("ParseCursor(%q) = %+v, %v", c.String(), got, err)
	}
	if (Cursor{}).String() != "" {
		t.Fatal("an unset cursor must encode as the empty string (no cursor yet)")
	}
	for _, bad := range []string{"", "42", "42:", "x:0xab", "-1:0xab"} {
		if _, err := ParseCursor(bad); err == nil {
			t.Errorf("ParseCursor(%q) accepted", bad)
		}
	}
}

// TestFinalityRecordRoundTrip: the finality key's record parses back to
// what was encoded, either side may be unset, and malformed text is refused.
func TestFinalityRecordRoundTrip(t *testing.T) {
	for _, f := range []Finality{
		{},
		{Safe: Cursor{Number: 98, Hash: "0xaa", Set: true}},
		{Safe: Cursor{Number: 98, Hash: "0xaa", Set: true}, Finalized: Cursor{Number: 90, Hash: "0xbb", Set: true}},
	} {
		got, err := ParseFinalityRecord(f.Record())
		if err != nil || got != f {
			t.Fatalf("%q: got %+v, %v; want %+v", f.Record(), got, err, f)
		}
	}
	for _, bad := range []string{"", "98:0xaa", "x|", "|90", "98|"} {
		if _, err := ParseFinalityRecord(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}
