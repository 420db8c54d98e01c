package deliver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	endpointsvc "github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/internal/redact"
	"github.com/ethhook/ethhook/modules/deliver/retry"
	"github.com/ethhook/ethhook/modules/deliver/ssrf"
	"github.com/ethhook/ethhook/sign"
)

// responseLimit is how much of a response is read and kept.
const responseLimit = 64 << 10

// maxRedirects bounds redirect chains of endpoints that allow redirects.
const maxRedirects = 5

// keptResponseHeaders are stored with each attempt (so at most this many).
var keptResponseHeaders = []string{"Content-Type", "Content-Length", "Retry-After", "Location", "Server", "X-Request-Id"}

// Bounds on what a receiver's response head costs: the transport fails an
// attempt whose head is over maxResponseHeaderBytes (Go's default is 10 MB,
// held in memory), and of the headers it accepts, each stored value is cut
// to maxHeaderValue and all of them together to maxStoredHeaders, so a
// receiver cannot fill delivery_history (a 4 MB header was stored whole).
const (
	maxResponseHeaderBytes = 64 << 10
	maxHeaderValue         = 1 << 10
	maxStoredHeaders       = 8 << 10
)

// truncatedMark ends a stored header value that was cut.
const truncatedMark = "...[truncated]"

// newClients builds the HTTP clients: one that never follows redirects and
// one that follows a few; both dial through the SSRF guard, so every hop is
// checked on the address actually connected to. No proxy is used: a proxy
// would dial for us and bypass the guard.
func newClients(guard *ssrf.Guard, connectTimeout time.Duration, maxConns int) (noRedirect, follow *http.Client) {
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second, Control: guard.Control}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           maxConns,
		MaxIdleConnsPerHost:    maxConns,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    connectTimeout,
		ExpectContinueTimeout:  time.Second,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	noRedirect = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	follow = &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return errTooManyRedirects
		}
		return nil
	}}
	return noRedirect, follow
}

var errTooManyRedirects = errors.New("too many redirects")

// attempt is the record of one HTTP attempt.
type attempt struct {
	status      int
	errClass    string
	errText     string
	reqHeaders  []header // sorted by name
	respHeaders []header // sorted by name
	excerpt     string
	retryAfter  time.Duration
	latency     time.Duration
}

// customHeader is one of an endpoint's static headers, worked out when
// the endpoint is loaded rather than per request: the canonical name and
// value sent, and the lower-case name and value (a credential-looking one
// masked) the attempt log shows.
type customHeader struct {
	name     string
	values   []string // one value, shared by every request: read only
	logName  string
	logValue string
}

// customHeaders prepares an endpoint's static headers: reserved names are
// skipped (whatever a row written around the endpoint service holds) and of
// two spellings of one name the last in sorted order wins.
func customHeaders(h map[string]string) []customHeader {
	var out []customHeader
	for _, k := range keys(h) {
		if endpointsvc.Reserved(k) {
			continue
		}
		v := h[k]
		c := customHeader{name: textproto.CanonicalMIMEHeaderKey(k), values: []string{v}, logName: strings.ToLower(k), logValue: v}
		// The attempt log shows which headers went out; a value that looks
		// like a credential (Authorization, X-Api-Key, ...) is masked there.
		if redact.Sensitive(k) {
			c.logValue = redact.Mask
		}
		if i := slices.IndexFunc(out, func(o customHeader) bool { return o.name == c.name }); i >= 0 {
			out[i] = c
			continue
		}
		out = append(out, c)
	}
	// Sorted as the attempt log stores them (requestHeaders merges them).
	slices.SortFunc(out, func(a, b customHeader) int { return strings.Compare(a.logName, b.logName) })
	return out
}

// requestHeaders lists the headers of a request as the attempt log keeps
// them, sorted by name: the endpoint's custom ones (sorted, never a
// reserved name) merged with the five every webhook carries.
func requestHeaders(custom []customHeader, userAgent, id, sig, ts string) []header {
	fixed := [...]header{{"content-type", "application/json"}, {"user-agent", userAgent},
		{"webhook-id", id}, {"webhook-signature", sig}, {"webhook-timestamp", ts}}
	out := make([]header, 0, len(fixed)+len(custom))
	i := 0
	for _, c := range custom {
		for i < len(fixed) && fixed[i].name < c.logName {
			out = append(out, fixed[i])
			i++
		}
		out = append(out, header{c.logName, c.logValue})
	}
	return append(out, fixed[i:]...)
}

// The request headers every webhook carries, by their canonical names (set
// straight into the http.Header, as Set would have canonicalized them).
const (
	headerContentType = "Content-Type"
	headerUserAgent   = "User-Agent"
	headerID          = "Webhook-Id"
	headerTimestamp   = "Webhook-Timestamp"
	headerSignature   = "Webhook-Signature"
)

var jsonContentType = []string{"application/json"} // shared by every request: read only

// post sends one signed webhook and classifies the answer.
func (m *Module) post(ctx context.Context, ep *endpoint, j *job) attempt {
	now := m.now()
	ts := now.Unix()
	tsText := strconv.FormatInt(ts, 10)
	sig := sign.HeaderOf(ep.keys(now), j.webhookID, ts, j.payload)
	var a attempt
	a.reqHeaders = requestHeaders(ep.custom, m.userAgent, j.webhookID, sig, tsText)
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.url, bytes.NewReader(j.payload))
	if err != nil {
		a.errClass, a.errText = "request", fmt.Sprintf("build request: %v", err)
		return a
	}
	// Custom headers first, so the headers below always win (customHeaders
	// has skipped the reserved names already).
	h := make(http.Header, len(ep.custom)+5)
	for _, c := range ep.custom {
		h[c.name] = c.values
	}
	vals := []string{m.userAgent, j.webhookID, tsText, sig} // one allocation for four values
	h[headerContentType] = jsonContentType
	h[headerUserAgent] = vals[0:1:1]
	h[headerID] = vals[1:2:2]
	h[headerTimestamp] = vals[2:3:3]
	h[headerSignature] = vals[3:4:4]
	req.Header = h
	start := time.Now()
	resp, err := m.do(req, ep.allowRedirects)
	if err != nil {
		a.latency = time.Since(start)
		a.errClass, a.errText = classify(err)
		return a
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, responseLimit))
	resp.Body.Close()
	a.latency = time.Since(start)
	a.status = resp.StatusCode
	a.excerpt = cleanText(body)
	a.respHeaders = storedHeaders(resp.Header)
	switch {
	case a.status >= 200 && a.status < 300:
		if rerr != nil && ctx.Err() != nil { // the answer is in; a slow body does not undo it
			a.errText = "response body cut short: " + rerr.Error()
		}
	case a.status >= 300 && a.status < 400:
		a.errClass, a.errText = "redirect", fmt.Sprintf("HTTP %d redirect not followed", a.status)
		if ep.allowRedirects {
			a.errText = fmt.Sprintf("HTTP %d redirect without a usable Location", a.status)
		}
	case a.status >= 400 && a.status < 500:
		a.errClass, a.errText = "http_4xx", fmt.Sprintf("HTTP %d", a.status)
	default:
		a.errClass, a.errText = "http_5xx", fmt.Sprintf("HTTP %d", a.status)
	}
	if a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable || a.status >= 500 {
		a.retryAfter = retry.ParseRetryAfter(resp.Header.Get("Retry-After"), now)
	}
	return a
}

// do sends req. When no redirect is to be followed (and the URL has no
// userinfo, which the client turns into basic auth) the request goes
// straight to the transport: http.Client would copy its headers for
// redirects it never follows, on every attempt. Errors are wrapped as the
// client wraps them (a *url.Error naming the method and URL), and a plain
// HTTP answer to an https URL is named as the client names it.
func (m *Module) do(req *http.Request, follow bool) (*http.Response, error) {
	if follow {
		return m.follow.Do(req)
	}
	if req.URL.User != nil {
		return m.client.Do(req)
	}
	resp, err := m.client.Transport.RoundTrip(req)
	if err != nil {
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) && string(rh.RecordHeader[:]) == "HTTP/" {
			err = http.ErrSchemeMismatch
		}
		return nil, &url.Error{Op: "Post", URL: req.URL.String(), Err: err}
	}
	return resp, nil
}

// storedHeaders picks the headers kept with an attempt, within
// maxHeaderValue each and maxStoredHeaders in all (names included), sorted
// by name.
func storedHeaders(h http.Header) []header {
	var out []header
	total := 0
	for _, name := range keptResponseHeaders {
		v := h.Get(name)
		if v == "" {
			continue
		}
		key := strings.ToLower(name)
		v = truncate(cleanText([]byte(v)), min(maxHeaderValue, maxStoredHeaders-total-len(key)))
		if v == "" {
			break // no room left
		}
		out = append(out, header{key, v})
		total += len(key) + len(v)
	}
	slices.SortFunc(out, func(a, b header) int { return strings.Compare(a.name, b.name) })
	return out
}

// truncate cuts s to at most n bytes, on a character boundary, ending in
// truncatedMark when it cut; "" when n leaves no room for the mark.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len(truncatedMark)
	if cut <= 0 {
		return ""
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + truncatedMark
}

// classify names a transport error: ssrf, dns, timeout, connect, redirect,
// tls. The text names the URL without its query values and userinfo (a
// receiver's token often rides in the query), as it goes to logs and the
// attempt log.
func classify(err error) (string, string) {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		uerr.URL = redact.URL(uerr.URL)
	}
	text := err.Error()
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, ssrf.ErrRefused):
		return "ssrf", text
	case errors.Is(err, errTooManyRedirects):
		return "redirect", text
	case errors.As(err, &dnsErr):
		return "dns", text
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout", text
	case strings.Contains(text, "tls:"), strings.Contains(text, "x509:"):
		return "tls", text
	}
	return "connect", text
}

// cleanText makes response bytes storable as Postgres text (valid UTF-8, no NUL).
func cleanText(b []byte) string {
	s := string(b)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "")
}
