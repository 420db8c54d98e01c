package devnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// JSON-RPC error codes the devnet answers with.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeServerError    = -32000 // geth's generic error: "unknown block", "subscription not found"...
	CodeLimitExceeded  = -32005 // provider limits: rate limit, block range, result count
)

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *rpcError) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Message) }

func errInvalidParams(format string, args ...any) *rpcError {
	return &rpcError{Code: CodeInvalidParams, Message: fmt.Sprintf(format, args...)}
}

type request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

func (r *request) isNotification() bool { return len(r.ID) == 0 }

// validID reports whether the id is a string, number or null.
func validID(id json.RawMessage) bool {
	if len(id) == 0 {
		return true
	}
	switch id[0] {
	case '"', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return true
	}
	return false
}

var nullID = json.RawMessage("null")

func appendResponse(dst []byte, id json.RawMessage, result []byte, e *rpcError) []byte {
	if len(id) == 0 {
		id = nullID
	}
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = append(dst, id...)
	if e != nil {
		eb, _ := json.Marshal(e)
		dst = append(dst, `,"error":`...)
		dst = append(dst, eb...)
	} else {
		dst = append(dst, `,"result":`...)
		dst = append(dst, result...)
	}
	return append(dst, '}')
}

// session is what a call may need from its transport.
type session interface {
	subscribe(kind string, f *logFilter) (string, *rpcError)
	unsubscribe(id string) bool
}

// handleMessage handles one frame / HTTP body: a single call or a batch. It
// returns the response to send (nil when there is none, e.g. only
// notifications) and how many calls were rate limited.
func (n *Node) handleMessage(msg []byte, s session) (resp []byte, limited int) {
	msg = bytes.TrimLeft(msg, " \t\r\n")
	if len(msg) > 0 && msg[0] == '[' {
		var raws []json.RawMessage
		if err := json.Unmarshal(msg, &raws); err != nil {
			return appendResponse(nil, nil, nil, &rpcError{Code: CodeParseError, Message: "parse error"}), 0
		}
		if len(raws) == 0 {
			return appendResponse(nil, nil, nil, &rpcError{Code: CodeInvalidRequest, Message: "empty batch"}), 0
		}
		out := []byte{'['}
		any := false
		for _, raw := range raws {
			r, lim := n.handleOne(raw, s)
			if lim {
				limited++
			}
			if r == nil {
				continue
			}
			if any {
				out = append(out, ',')
			}
			out = append(out, r...)
			any = true
		}
		if !any {
			return nil, limited
		}
		return append(out, ']'), limited
	}
	r, lim := n.handleOne(msg, s)
	if lim {
		limited = 1
	}
	return r, limited
}

func (n *Node) handleOne(raw []byte, s session) (resp []byte, limited bool) {
	var req request
	if err := json.Unmarshal(raw, &req); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || len(bytes.TrimSpace(raw)) == 0 {
			return appendResponse(nil, nil, nil, &rpcError{Code: CodeParseError, Message: "parse error"}), false
		}
		return appendResponse(nil, nil, nil, &rpcError{Code: CodeInvalidRequest, Message: "invalid request"}), false
	}
	if req.JSONRPC != "2.0" || req.Method == "" || !validID(req.ID) {
		return appendResponse(nil, req.ID, nil, &rpcError{Code: CodeInvalidRequest, Message: "invalid request"}), false
	}
	n.statsMu.Lock()
	n.requests[req.Method]++
	n.statsMu.Unlock()
	if n.takeRateLimit() {
		n.count(func(s *Stats) { s.RateLimited++ })
		if req.isNotification() {
			return nil, true
		}
		return appendResponse(nil, req.ID, nil, &rpcError{Code: CodeLimitExceeded, Message: "rate limit exceeded", Data: map[string]any{"see": "https://docs.ethhook.dev/devnet#rate-limits"}}), true
	}
	result, e := n.call(req.Method, req.Params, s)
	if req.isNotification() {
		return nil, false
	}
	return appendResponse(make([]byte, 0, len(result)+64), req.ID, result, e), false
}

func (n *Node) takeRateLimit() bool { return takeArmed(&n.ratelimit) }

// parseParams splits positional params. Missing params are an empty list.
func parseParams(p json.RawMessage) ([]json.RawMessage, *rpcError) {
	p = bytes.TrimSpace(p)
	if len(p) == 0 || string(p) == "null" {
		return nil, nil
	}
	if p[0] != '[' {
		return nil, errInvalidParams("non-array args")
	}
	var out []json.RawMessage
	if err := json.Unmarshal(p, &out); err != nil {
		return nil, errInvalidParams("invalid params: %v", err)
	}
	return out, nil
}

func arg(params []json.RawMessage, i int) (json.RawMessage, bool) {
	if i >= len(params) || string(bytes.TrimSpace(params[i])) == "null" {
		return nil, false
	}
	return params[i], true
}

// requiredArg is params[i], or the invalid-params error geth gives when it is missing.
func requiredArg(params []json.RawMessage, i int) (json.RawMessage, *rpcError) {
	p, ok := arg(params, i)
	if !ok {
		return nil, errInvalidParams("missing value for required argument %d", i)
	}
	return p, nil
}

// stringArg is the required string params[i].
func stringArg(params []json.RawMessage, i int) (string, *rpcError) {
	p, e := requiredArg(params, i)
	if e != nil {
		return "", e
	}
	var v string
	if err := json.Unmarshal(p, &v); err != nil {
		return "", errInvalidParams("invalid argument %d: %v", i, err)
	}
	return v, nil
}

// hashArg is the required 32-byte hash params[i].
func hashArg(params []json.RawMessage, i int) (common.Hash, *rpcError) {
	p, e := requiredArg(params, i)
	if e != nil {
		return common.Hash{}, e
	}
	return parseHash(p, i)
}

func (n *Node) call(method string, raw json.RawMessage, s session) ([]byte, *rpcError) {
	params, e := parseParams(raw)
	if e != nil {
		return nil, e
	}
	switch method {
	case "eth_chainId":
		return []byte(`"` + quantity(n.cfg.ChainID) + `"`), nil
	case "net_version":
		return []byte(`"` + strconv.FormatUint(n.cfg.ChainID, 10) + `"`), nil
	case "net_listening":
		return []byte("true"), nil
	case "eth_syncing":
		return []byte("false"), nil
	case "web3_clientVersion":
		return []byte(`"EthHook-devnet/v1.0.0/linux-amd64/go"`), nil
	case "eth_blockNumber":
		return []byte(`"` + quantity(n.headBlock().Number) + `"`), nil
	case "eth_getBlockByNumber", "eth_getBlockByHash":
		return n.getBlock(method == "eth_getBlockByHash", params)
	case "eth_getLogs":
		p0, e := requiredArg(params, 0)
		if e != nil {
			return nil, e
		}
		return n.getLogs(p0)
	case "eth_getTransactionReceipt":
		h, e := hashArg(params, 0)
		if e != nil {
			return nil, e
		}
		return n.receipt(h), nil
	case "eth_subscribe", "eth_unsubscribe":
		if s == nil {
			return nil, &rpcError{Code: CodeMethodNotFound, Message: "notifications not supported"}
		}
		p0, e := stringArg(params, 0) // the subscription's kind, or its id
		if e != nil {
			return nil, e
		}
		if method == "eth_unsubscribe" {
			if !s.unsubscribe(p0) {
				return nil, &rpcError{Code: CodeServerError, Message: "subscription not found"}
			}
			return []byte("true"), nil
		}
		return newSubscription(s, p0, params)
	}
	return nil, &rpcError{Code: CodeMethodNotFound, Message: fmt.Sprintf("the method %s does not exist/is not available", method)}
}

// getBlock answers eth_getBlockByNumber and eth_getBlockByHash: the
// block, with its transactions whole when the second param asks, or null.
func (n *Node) getBlock(byHash bool, params []json.RawMessage) ([]byte, *rpcError) {
	var b *block
	if byHash {
		h, e := hashArg(params, 0)
		if e != nil {
			return nil, e
		}
		b = n.withHash(h)
	} else {
		p0, e := requiredArg(params, 0)
		if e != nil {
			return nil, e
		}
		num, e := n.parseBlockNumber(p0, 0, false)
		if e != nil {
			return nil, e
		}
		b = n.canonAt(num)
	}
	full, e := parseFullTx(params)
	if e != nil {
		return nil, e
	}
	if b == nil {
		return []byte("null"), nil
	}
	return n.renderBlock(b, full), nil
}

// newSubscription answers eth_subscribe for newHeads and logs (with optional
// criteria in the second param) with the new subscription's id.
func newSubscription(s session, kind string, params []json.RawMessage) ([]byte, *rpcError) {
	var f *logFilter
	switch kind {
	case "newHeads":
	case "logs":
		f = &logFilter{}
		if p1, ok := arg(params, 1); ok {
			c, e := parseCriteria(p1, 1)
			if e != nil {
				return nil, e
			}
			f = &c.logFilter
		}
	default:
		return nil, &rpcError{Code: CodeMethodNotFound, Message: fmt.Sprintf("no %q subscription in eth namespace", kind)}
	}
	id, e := s.subscribe(kind, f)
	if e != nil {
		return nil, e
	}
	return []byte(`"` + id + `"`), nil
}

func parseFullTx(params []json.RawMessage) (bool, *rpcError) {
	p1, ok := arg(params, 1)
	if !ok {
		if len(params) < 2 {
			return false, errInvalidParams("missing value for required argument 1")
		}
		return false, nil
	}
	var full bool
	if err := json.Unmarshal(p1, &full); err != nil {
		return false, errInvalidParams("invalid argument 1: %v", err)
	}
	return full, nil
}

func parseHash(raw json.RawMessage, pos int) (common.Hash, *rpcError) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return common.Hash{}, errInvalidParams("invalid argument %d: json: cannot unmarshal non-string into Go value of type common.Hash", pos)
	}
	b, err := hexutil.Decode(s)
	if err != nil {
		return common.Hash{}, errInvalidParams("invalid argument %d: %v", pos, err)
	}
	if len(b) != 32 {
		return common.Hash{}, errInvalidParams("invalid argument %d: hex string has length %d, want 64 for common.Hash", pos, len(b)*2)
	}
	return common.BytesToHash(b), nil
}

// parseBlockNumber resolves a block tag or hex number. forLogs rejects
// "pending" as geth's filter API does.
func (n *Node) parseBlockNumber(raw json.RawMessage, pos int, forLogs bool) (uint64, *rpcError) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, errInvalidParams("invalid argument %d: json: cannot unmarshal non-string into Go value of type rpc.BlockNumber", pos)
	}
	head := n.headBlock().Number
	switch s {
	case "latest", "":
		return head, nil
	case "earliest":
		return 0, nil
	case "pending":
		if forLogs {
			return 0, errInvalidParams("pending logs are not supported")
		}
		return head, nil
	case "finalized":
		_, f := n.fin.tags(head)
		return f, nil
	case "safe":
		s, _ := n.fin.tags(head)
		return s, nil
	}
	v, err := hexutil.DecodeUint64(s)
	if err != nil {
		return 0, errInvalidParams("invalid argument %d: %v", pos, err)
	}
	if v > 1<<63-1 {
		return 0, errInvalidParams("invalid argument %d: block number larger than int64", pos)
	}
	return v, nil
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}
