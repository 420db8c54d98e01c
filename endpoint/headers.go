package endpoint

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/ethhook/ethhook/hook"
)

// Bounds on an endpoint's custom headers: at most MaxHeaders, names of at
// most MaxHeaderName bytes, values of at most MaxHeaderValue bytes, and
// MaxHeadersBytes in all (names and values), so a tenant cannot make every
// request (and every stored attempt) large.
const (
	MaxHeaders      = 10
	MaxHeaderName   = 64
	MaxHeaderValue  = 1024
	MaxHeadersBytes = 4096
)

// reservedHeaders are set by EthHook or by the HTTP layer and never taken
// from an endpoint: the Standard Webhooks headers, what describes the
// body, and the hop-by-hop headers of RFC 9110 section 7.6.1.
var reservedHeaders = map[string]bool{
	"Webhook-Id": true, "Webhook-Timestamp": true, "Webhook-Signature": true,
	"Content-Type": true, "Content-Length": true, "Content-Encoding": true, "User-Agent": true, "Host": true,
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Expect": true,
}

// Reserved reports whether a header name may not be set by an endpoint
// (deliver checks it again before sending).
func Reserved(name string) bool {
	c := http.CanonicalHeaderKey(name)
	return reservedHeaders[c] || strings.HasPrefix(c, "Webhook-")
}

// validateHeaders checks and canonicalizes e.Headers.
func validateHeaders(e *hook.Endpoint, fields map[string]string) {
	if len(e.Headers) == 0 {
		e.Headers = nil
		return
	}
	if len(e.Headers) > MaxHeaders {
		fields["headers"] = fmt.Sprintf("at most %d headers, got %d", MaxHeaders, len(e.Headers))
		return
	}
	out, total := map[string]string{}, 0
	for name, v := range e.Headers {
		key := "headers." + name
		c := http.CanonicalHeaderKey(name)
		total += len(name) + len(v)
		switch {
		case name == "" || len(name) > MaxHeaderName || !httpguts.ValidHeaderFieldName(name):
			fields[key] = fmt.Sprintf("not a header name of 1..%d token characters", MaxHeaderName)
		case Reserved(c):
			fields[key] = "set by EthHook (Standard Webhooks, body and hop-by-hop headers cannot be replaced)"
		case len(v) > MaxHeaderValue:
			fields[key] = fmt.Sprintf("value longer than %d bytes", MaxHeaderValue)
		case !httpguts.ValidHeaderFieldValue(v):
			fields[key] = "value holds control characters"
		default:
			if _, dup := out[c]; dup {
				fields[key] = fmt.Sprintf("given twice (as %s)", c)
			}
			out[c] = v
		}
	}
	if total > MaxHeadersBytes {
		fields["headers"] = fmt.Sprintf("%d bytes of names and values, at most %d", total, MaxHeadersBytes)
	}
	e.Headers = out
}

// headersJSON is the column value: never NULL.
func headersJSON(h map[string]string) []byte {
	if len(h) == 0 {
		return []byte("{}")
	}
	b, _ := json.Marshal(h) // a map of strings always encodes
	return b
}
