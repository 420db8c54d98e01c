package deliver

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestReceiverResponseHeadersAreStoredWithinBounds answers one webhook with
// oversized kept headers and another with a 4 MB header (which used to be
// stored whole in delivery_history): the first is stored cut to the
// per-value and total bounds with a mark, the second fails the attempt
// and stores nothing of it.
func TestReceiverResponseHeadersAreStoredWithinBounds(t *testing.T) {
	e := newEnv(t)
	long := newReceiver(t, func(int, *http.Request) (int, http.Header) {
		return 200, http.Header{"Server": {strings.Repeat("s", 32<<10)}, "X-Request-Id": {strings.Repeat("é", 2<<10)}, "Content-Type": {"text/plain"}}
	})
	huge := newReceiver(t, func(int, *http.Request) (int, http.Header) {
		return 200, http.Header{"X-Request-Id": {strings.Repeat("h", 4<<20)}}
	})
	app := e.app(t, "")
	epLong, _ := e.endpoint(t, app, long.URL+"/hook", epOpt{})
	epHuge, _ := e.endpoint(t, app, huge.URL+"/hook", epOpt{})
	idLong, _ := e.message(t, app, epLong, `{"n":1}`)
	idHuge, _ := e.message(t, app, epHuge, `{"n":2}`)
	e.start(t)
	e.waitState(t, idLong, "succeeded")

	row := func(id string) (headers map[string]string, size int, errText string) {
		t.Helper()
		eventually(t, "an attempt of "+id, func() bool {
			err := e.pool.QueryRow(context.Background(), `SELECT response_headers, octet_length(response_headers::text), error
				FROM delivery_history WHERE message_id = $1 ORDER BY attempt LIMIT 1`, id).Scan(&headers, &size, &errText)
			return err == nil
		})
		return headers, size, errText
	}
	h, size, _ := row(idLong)
	if size > maxStoredHeaders+256 {
		t.Fatalf("stored response headers are %d bytes, want about %d at most", size, maxStoredHeaders)
	}
	for _, k := range []string{"server", "x-request-id"} {
		if v := h[k]; len(v) > maxHeaderValue || !strings.HasSuffix(v, truncatedMark) {
			t.Fatalf("%s stored as %d bytes ending %q, want at most %d ending in the mark", k, len(v), v[max(0, len(v)-20):], maxHeaderValue)
		}
	}
	if h["content-type"] != "text/plain" {
		t.Fatalf("content-type %q, want the short header kept whole", h["content-type"])
	}

	h, size, errText := row(idHuge)
	if size > maxStoredHeaders || len(h["x-request-id"]) > maxHeaderValue {
		t.Fatalf("stored response headers are %d bytes", size)
	}
	if !strings.Contains(errText, "exceeded") || e.msg(t, idHuge).State == "succeeded" {
		t.Fatalf("4 MB response head: error %q, state %s; want the attempt to fail on the head size", errText, e.msg(t, idHuge).State)
	}
}
