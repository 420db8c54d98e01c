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
