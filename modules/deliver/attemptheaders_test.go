package deliver

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestAttemptHeadersEncodeAsEncodingJSONDoes: the attempt row's headers
// JSON is byte for byte what encoding/json writes for the same map, for
// the headers post and storedHeaders produce and for random names and
// values full of what JSON escapes (quotes, backslashes, control and HTML
// characters, U+2028/U+2029, invalid UTF-8).
func TestAttemptHeadersEncodeAsEncodingJSONDoes(t *testing.T) {
	check := func(hs []header) {
		t.Helper()
		m := map[string]string{}
		for _, h := range hs {
			m[h.name] = h.value
		}
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendHeadersJSON(nil, hs); string(got) != string(want) {
			t.Fatalf("headers %q encode as\n%s\nencoding/json writes\n%s", hs, got, want)
		}
	}
	check(nil)
	check(requestHeaders(customHeaders(map[string]string{"X-Tenant": "a<b>&c", "Authorization": "Bearer x", "A-First": "1", "Zz": "\u2028"}),
		"ethhook/1.2.3", "1:0xabc:12:removed", "v1,abc= v1a,def=", "1700000000"))
	check(storedHeaders(http.Header{"Content-Type": {"text/html; charset=\"utf-8\""}, "Server": {"\x00nginx\\\x7f"},
		"X-Request-Id": {"\xff\xfe id"}, "Retry-After": {"120"}, "Location": {"/x?a=1&b=2"}}))
	pieces := []string{"a", "Z", "-", "\"", "\\", "/", "<", ">", "&", "\b", "\f", "\n", "\r", "\t", "\x00", "\x01", "\x1f", "\x7f",
		"é", "€", "\u2028", "\u2029", "\U0001F600", "\xff", "\xc3", "\xe2\x80", "\ufffd", " "}
	rnd := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		var b strings.Builder
		for range rnd.IntN(12) {
			b.WriteString(pieces[rnd.IntN(len(pieces))])
		}
		return b.String()
	}
	for range 2000 {
		seen := map[string]bool{}
		var hs []header
		for range rnd.IntN(8) {
			k := word()
			if seen[k] {
				continue
			}
			seen[k] = true
			hs = append(hs, header{k, word()})
		}
		slices.SortFunc(hs, func(a, b header) int { return strings.Compare(a.name, b.name) })
		check(hs)
	}
}
