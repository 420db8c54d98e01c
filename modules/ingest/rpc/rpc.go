// Package rpc is a small JSON-RPC 2.0 client for Ethereum nodes: a
// WebSocket transport (github.com/coder/websocket) with request/response
// correlation, batches, subscriptions, per-call timeouts, a read limit and
// keepalive pings, and an HTTP transport for ranged backfill.
package rpc

import (
	"errors"
	"fmt"
	"strings"
	"time"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Error is a JSON-RPC error object returned by the node.
type Error struct {
	Code    int            `json:"code"`
	Message string         `json:"message"`
	Data    jsontext.Value `json:"data,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("json-rpc error %d: %s", e.Code, e.Message) }

// Sentinel errors callers branch on.
var (
	// ErrClosed: the connection is gone; the call's fate is unknown.
	ErrClosed = errors.New("rpc connection closed")
	// ErrTooLarge: a message exceeded the configured read limit.
	ErrTooLarge = errors.New("rpc message exceeds read limit")
	// ErrMalformed: the node sent something that is not valid JSON-RPC.
	ErrMalformed = errors.New("malformed json-rpc message")
	// ErrRateLimited: HTTP 429 from the node.
	ErrRateLimited = errors.New("rate limited by node")
)

// Options tune a transport. Zero values take sensible defaults.
type Options struct {
	CallTimeout  time.Duration // per call or batch; default 10s
	ReadLimit    int64         // largest message read; default 32 MiB
	PingInterval time.Duration // WebSocket keepalive; default 15s
	// SubBuffer is how many notifications one subscription queues while
	// its reader is busy; default 256.
	SubBuffer int
	// SubBufferBytes bounds the bytes those queued notifications hold;
	// default DefaultSubBufferBytes. A notification that does not fit
	// pushes the oldest out (they are dropped and counted, never block the
	// read loop and so the responses behind them).
	SubBufferBytes int64
	// Observe, when set, is called after every call with its method, its
	// duration and its error (nil on success). A batch reports its first
	// method with a "batch:" prefix.
	Observe func(method string, d time.Duration, err error)
	// Malformed, when set, is called for every frame that is not valid
	// JSON-RPC (invalid JSON, wrong version, unknown id or subscription).
	Malformed func(err error)
}

// DefaultSubBufferBytes is the default byte budget of one subscription's
// queue. A newHeads header is 0.5..3 KB, so 4 MiB is a thousand heads or
// more: far more than pile up while one call waits. Without a byte bound
// the queue could hold SubBuffer x ReadLimit (256 x 32 MiB = 8 GiB) of
// whatever a hostile node sends while a call is pending.
const DefaultSubBufferBytes = 4 << 20

func (o Options) withDefaults() Options {
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = 32 << 20
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 15 * time.Second
	}
	if o.SubBuffer <= 0 {
		o.SubBuffer = 256
	}
	if o.SubBufferBytes <= 0 {
		o.SubBufferBytes = DefaultSubBufferBytes
	}
	return o
}

// BatchElem is one call of a batch. Result is decoded into; Error holds
// that element's own failure (a JSON-RPC error or a decode error).
type BatchElem struct {
	Method string
	Params []any
	Result any
	Error  error
}

type request struct {
	JSONRPC string `json:"jsonrpc"`
	ID      uint64 `json:"id"`
	Method  string `json:"method"`
	Params  []any  `json:"params"`
}

// message is any frame the node sends: a response or a notification.
type message struct {
	JSONRPC string         `json:"jsonrpc"`
	ID      jsontext.Value `json:"id,omitempty"`
	Method  string         `json:"method,omitempty"`
	Params  jsontext.Value `json:"params,omitempty"`
	Result  jsontext.Value `json:"result,omitempty"`
	Error   *Error         `json:"error,omitempty"`
}

// The node's answers are decoded with go-json-experiment/json (single
// pass, several times faster than encoding/json on large eth_getLogs
// answers); duplicate object names are tolerated as encoding/json does.
var decodeOpts = json.JoinOptions(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

// parseFrame decodes one frame: a single message or a batch array.
func parseFrame(b []byte) ([]message, error) {
	s := firstByte(b)
	switch s {
	case '[':
		var ms []message
		if err := json.Unmarshal(b, &ms, decodeOpts); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return ms, nil
	case '{':
		var m message
		if err := json.Unmarshal(b, &m, decodeOpts); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return []message{m}, nil
	}
	return nil, fmt.Errorf("%w: frame starts with %q", ErrMalformed, s)
}

func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// numericID parses a response id we sent (a JSON number).
func numericID(raw jsontext.Value) (uint64, bool) {
	if len(raw) == 0 || len(raw) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

func (m *message) validate() error {
	if m.JSONRPC != "2.0" {
		return fmt.Errorf("%w: jsonrpc version %q", ErrMalformed, m.JSONRPC)
	}
	return nil
}

// decodeResult turns a response into the caller's result or error.
func decodeResult(m *message, method string, out any) error {
	if m.Error != nil {
		return m.Error
	}
	if out == nil {
		return nil
	}
	if len(m.Result) == 0 {
		return fmt.Errorf("%s: %w: response without result or error", method, ErrMalformed)
	}
	if err := json.Unmarshal(m.Result, out, decodeOpts); err != nil {
		return fmt.Errorf("%s: decode result: %w", method, err)
	}
	return nil
}

// Code returns the JSON-RPC error code of err, or 0 when it is none.
func Code(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// IsRateLimit reports whether err is a provider rate limit (HTTP 429,
// -32005 "rate limit", Alchemy's compute-units wording, -32029/429 codes).
func IsRateLimit(err error) bool {
	if errors.Is(err, ErrRateLimited) {
		return true
	}
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	if e.Code == 429 || e.Code == -32029 {
		return true
	}
	m := strings.ToLower(e.Message)
	return strings.Contains(m, "rate limit") || strings.Contains(m, "too many requests") ||
		strings.Contains(m, "compute units per second") || strings.Contains(m, "throughput")
}

// rangeWordings are the ways providers say "ask for fewer blocks or logs":
// geth/Infura "query returned more than 10000 results", Alchemy "Log
// response size exceeded", QuickNode "eth_getLogs is limited to a 10,000
// range", Ankr "block range is too wide", Erigon/Nethermind "exceed max
// block range", Cloudflare "Exceeded max range limit", "limit exceeded",
// "response size should not greater than", timeouts of big queries.
var rangeWordings = []string{
	"query returned more than", "more than", "block range", "range too large", "range is too",
	"limited to", "max range", "maximum block range", "exceed max", "exceeds max", "limit exceeded",
	"response size", "too many", "too large", "too wide", "query timeout", "log response",
	"returned too many", "results exceed", "range limit",
}

// IsRangeError reports whether err asks for a smaller eth_getLogs range:
// a provider range/size error, or a response above our own read limit.
func IsRangeError(err error) bool {
	if errors.Is(err, ErrTooLarge) {
		return true
	}
	if IsRateLimit(err) {
		return false
	}
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	m := strings.ToLower(e.Message)
	for _, w := range rangeWordings {
		if strings.Contains(m, w) {
			return true
		}
	}
	return e.Code == -32005
}
