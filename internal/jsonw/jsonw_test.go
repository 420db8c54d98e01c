package jsonw

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// TestAppendStringIsEncodingJSON compares AppendString with encoding/json
// on hostile strings and random bytes (control characters, HTML
// characters, U+2028/2029, invalid UTF-8, multi-byte runes).
func TestAppendStringIsEncodingJSON(t *testing.T) {
	cases := []string{"", "plain", `"quoted" \ back`, "<script>&amp;</script>", "\x00\x01\x1f\x7f",
		"\b\f\n\r\t", "line\u2028sep\u2029", "\xff\xfe", "é日本🎉", "a\xc3", "\xed\xa0\x80"}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "\"", "\\", "<", ">", "&", "\x00", "\x1f", "\n", "é", "\u2028", "\u2029", "\xff", "\xc3", "🎉", " "}
	for range 2000 {
		var s string
		for range r.IntN(20) {
			s += alphabet[r.IntN(len(alphabet))]
		}
		cases = append(cases, s)
	}
	for _, s := range cases {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Fatalf("AppendString(%q) = %s, encoding/json writes %s", s, got, want)
		}
	}
}
