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

func (n *Node) takeRateLimit() bool {
	for {
		v := n.ratelimit.Load()
		if v <= 0 {
			return false
		}
		if n.ratelimit.CompareAndSwap(v, v-1) {
			return true
		}
	}
}

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
	case "eth_getBlockByNumber":
		p0, e := requiredArg(params, 0)
		if e != nil {
			return nil, e
		}
		num, e := n.parseBlockNumber(p0, 0, false)
		if e != nil {
			return nil, e
		}
		full, e := parseFullTx(params)
		if e != nil {
			return nil, e
		}
		n.mu.RLock()
		var b *block
		if num < uint64(len(n.canon)) {
			b = n.canon[num]
		}
		n.mu.RUnlock()
		if b == nil {
			return []byte("null"), nil
		}
		return n.renderBlock(b, full), nil
	case "eth_getBlockByHash":
		p0, e := requiredArg(params, 0)
		if e != nil {
			return nil, e
		}
		h, e := parseHash(p0, 0)
		if e != nil {
			return nil, e
		}
		full, e := parseFullTx(params)
		if e != nil {
			return nil, e
		}
		n.mu.RLock()
		b := n.byHash[h]
		n.mu.RUnlock()
		if b == nil {
			return []byte("null"), nil
		}
		return n.renderBlock(b, full), nil
	case "eth_getLogs":
		p0, e := requiredArg(params, 0)
		if e != nil {
			return nil, e
		}
		return n.getLogs(p0)
	case "eth_getTransactionReceipt":
		p0, e := requiredArg(params, 0)
		if e != nil {
			return nil, e
		}
		h, e := parseHash(p0, 0)
		if e != nil {
			return nil, e
		}
		return n.receipt(h), nil
	case "eth_subscribe":
		if s == nil {
			return nil, &rpcError{Code: CodeMethodNotFound, Message: "notifications not supported"}
		}
		kind, e := stringArg(params, 0)
		if e != nil {
			return nil, e
		}
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
	case "eth_unsubscribe":
		if s == nil {
			return nil, &rpcError{Code: CodeMethodNotFound, Message: "notifications not supported"}
		}
		id, e := stringArg(params, 0)
		if e != nil {
			return nil, e
		}
		if !s.unsubscribe(id) {
			return nil, &rpcError{Code: CodeServerError, Message: "subscription not found"}
		}
		return []byte("true"), nil
	}
	return nil, &rpcError{Code: CodeMethodNotFound, Message: fmt.Sprintf("the method %s does not exist/is not available", method)}
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

func (n *Node) renderBlock(b *block, full bool) []byte {
	b = n.full(b)
	out := make([]byte, 0, len(b.header)+200+len(b.TxHashes)*70)
	out = append(out, b.header[:len(b.header)-1]...)
	out = append(out, `,"size":"`...)
	out = appendQuantity(out, b.sizeBytes)
	out = append(out, `","transactions":[`...)
	for i, h := range b.TxHashes {
		if i > 0 {
			out = append(out, ',')
		}
		if full {
			out = n.appendTx(out, b, i)
			continue
		}
		out = append(out, '"')
		out = appendHash(out, h)
		out = append(out, '"')
	}
	out = append(out, `],"uncles":[],"withdrawals":[]}`...)
	return out
}

func (n *Node) appendTx(out []byte, b *block, i int) []byte {
	out = append(out, `{"blockHash":"`...)
	out = appendHash(out, b.Hash)
	out = append(out, `","blockNumber":"`...)
	out = appendQuantity(out, b.Number)
	out = append(out, `","blockTimestamp":"`...)
	out = appendQuantity(out, b.Time)
	out = append(out, `","chainId":"`...)
	out = appendQuantity(out, n.cfg.ChainID)
	out = append(out, `","from":"`...)
	out = appendHex(out, b.txFrom[i].Bytes())
	out = append(out, `","gas":"0x30d40","gasPrice":"0x3b9aca00","maxFeePerGas":"0x77359400","maxPriorityFeePerGas":"0x0","hash":"`...)
	out = appendHash(out, b.TxHashes[i])
	out = append(out, `","input":"0x","nonce":"`...)
	out = appendQuantity(out, b.Number)
	out = append(out, `","to":"`...)
	out = appendHex(out, b.txTo[i].Bytes())
	out = append(out, `","transactionIndex":"`...)
	out = appendQuantity(out, uint64(i))
	out = append(out, `","value":"0x0","type":"0x2","accessList":[],"v":"0x1","r":"`...)
	out = appendHash(out, b.TxHashes[i])
	out = append(out, `","s":"`...)
	out = appendHash(out, b.mixHash)
	out = append(out, `","yParity":"0x1"}`...)
	return out
}

// receipt answers eth_getTransactionReceipt for canonical transactions.
func (n *Node) receipt(h common.Hash) []byte {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for i := len(n.canon) - 1; i >= 0; i-- {
		b := n.canon[i]
		if b.compact {
			break // older blocks are compacted too; receipts only for retained ones
		}
		for ti, th := range b.TxHashes {
			if th != h {
				continue
			}
			out := []byte(`{"blockHash":"`)
			out = appendHash(out, b.Hash)
			out = append(out, `","blockNumber":"`...)
			out = appendQuantity(out, b.Number)
			out = append(out, `","contractAddress":null,"cumulativeGasUsed":"`...)
			out = appendQuantity(out, b.gasUsed)
			out = append(out, `","effectiveGasPrice":"0x3b9aca00","from":"`...)
			out = appendHex(out, b.txFrom[ti].Bytes())
			out = append(out, `","gasUsed":"0x5208","logs":[`...)
			first := true
			for li := range b.Logs {
				if b.Logs[li].TxIndex != uint(ti) {
					continue
				}
				if !first {
					out = append(out, ',')
				}
				first = false
				out = append(out, b.logJSON(li)...)
			}
			out = append(out, `],"logsBloom":"`...)
			out = appendHex(out, b.Bloom.Bytes())
			out = append(out, `","status":"0x1","to":"`...)
			out = appendHex(out, b.txTo[ti].Bytes())
			out = append(out, `","transactionHash":"`...)
			out = appendHash(out, th)
			out = append(out, `","transactionIndex":"`...)
			out = appendQuantity(out, uint64(ti))
			out = append(out, `","type":"0x2"}`...)
			return out
		}
	}
	return []byte("null")
}

// logFilter is the address/topics part of a filter.
type logFilter struct {
	addrs  []common.Address // empty = any
	topics [][]common.Hash  // per position; empty slice = wildcard
}

func (f *logFilter) empty() bool { return len(f.addrs) == 0 && len(f.topics) == 0 }

func (f *logFilter) match(addr common.Address, topics []common.Hash) bool {
	if len(f.addrs) > 0 {
		ok := false
		for _, a := range f.addrs {
			if a == addr {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(f.topics) > len(topics) {
		return false
	}
	for i, alts := range f.topics {
		if len(alts) == 0 {
			continue
		}
		ok := false
		for _, t := range alts {
			if t == topics[i] {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

type criteria struct {
	logFilter
	blockHash *common.Hash
	from, to  json.RawMessage
}

func parseCriteria(raw json.RawMessage, pos int) (*criteria, *rpcError) {
	var obj struct {
		BlockHash *string         `json:"blockHash"`
		FromBlock json.RawMessage `json:"fromBlock"`
		ToBlock   json.RawMessage `json:"toBlock"`
		Address   json.RawMessage `json:"address"`
		Topics    []any           `json:"topics"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, errInvalidParams("invalid argument %d: %v", pos, err)
	}
	c := &criteria{}
	if obj.BlockHash != nil {
		h, e := parseHash(json.RawMessage(strconv.Quote(*obj.BlockHash)), pos)
		if e != nil {
			return nil, e
		}
		c.blockHash = &h
	}
	if len(obj.FromBlock) > 0 && string(obj.FromBlock) != "null" {
		c.from = obj.FromBlock
	}
	if len(obj.ToBlock) > 0 && string(obj.ToBlock) != "null" {
		c.to = obj.ToBlock
	}
	if c.blockHash != nil && (c.from != nil || c.to != nil) {
		return nil, errInvalidParams("can't specify fromBlock/toBlock with blockHash")
	}
	if a := bytes.TrimSpace(obj.Address); len(a) > 0 && string(a) != "null" {
		var list []string
		if a[0] == '[' {
			if err := json.Unmarshal(a, &list); err != nil {
				return nil, errInvalidParams("invalid argument %d: invalid address: %v", pos, err)
			}
		} else {
			var one string
			if err := json.Unmarshal(a, &one); err != nil {
				return nil, errInvalidParams("invalid argument %d: invalid address: %v", pos, err)
			}
			list = []string{one}
		}
		for i, s := range list {
			b, err := hexutil.Decode(s)
			if err != nil || len(b) != common.AddressLength {
				return nil, errInvalidParams("invalid argument %d: invalid address at index %d: %v", pos, i, s)
			}
			c.addrs = append(c.addrs, common.BytesToAddress(b))
		}
	}
	if len(obj.Topics) > 4 {
		return nil, &rpcError{Code: CodeServerError, Message: "exceed max topics"}
	}
	for _, t := range obj.Topics {
		switch v := t.(type) {
		case nil:
			c.topics = append(c.topics, nil)
		case string:
			h, ok := decodeTopic(v)
			if !ok {
				return nil, errInvalidParams("invalid topic(s)")
			}
			c.topics = append(c.topics, []common.Hash{h})
		case []any:
			var alts []common.Hash
			wild := false
			for _, x := range v {
				if x == nil {
					wild = true
					continue
				}
				s, ok := x.(string)
				if !ok {
					return nil, errInvalidParams("invalid topic(s)")
				}
				h, ok := decodeTopic(s)
				if !ok {
					return nil, errInvalidParams("invalid topic(s)")
				}
				alts = append(alts, h)
			}
			if wild {
				alts = nil
			}
			c.topics = append(c.topics, alts)
		default:
			return nil, errInvalidParams("invalid topic(s)")
		}
	}
	// Trailing wildcards still require the log to have that many topics
	// (geth semantics), so they are kept.
	return c, nil
}

func decodeTopic(s string) (common.Hash, bool) {
	b, err := hexutil.Decode(s)
	if err != nil || len(b) != 32 {
		return common.Hash{}, false
	}
	return common.BytesToHash(b), true
}

// getLogs answers eth_getLogs.
func (n *Node) getLogs(raw json.RawMessage) ([]byte, *rpcError) {
	c, e := parseCriteria(raw, 0)
	if e != nil {
		return nil, e
	}
	if c.blockHash != nil {
		n.mu.RLock()
		b := n.byHash[*c.blockHash]
		n.mu.RUnlock()
		if b == nil {
			return nil, &rpcError{Code: CodeServerError, Message: "unknown block"}
		}
		b = n.full(b)
		if len(b.Logs) > 0 {
			n.emptyMu.Lock()
			lag := n.emptyOnce[b.Hash]
			delete(n.emptyOnce, b.Hash)
			n.emptyMu.Unlock()
			if lag {
				n.count(func(s *Stats) { s.EmptyLogsServed++ })
				return []byte("[]"), nil
			}
		}
		out := []byte{'['}
		out, _ = appendBlockLogs(out, b, &c.logFilter, false, 0)
		return append(out, ']'), nil
	}
	head := n.headBlock().Number
	from, to := head, head
	if c.from != nil {
		if from, e = n.parseBlockNumber(c.from, 0, true); e != nil {
			return nil, e
		}
	}
	if c.to != nil {
		if to, e = n.parseBlockNumber(c.to, 0, true); e != nil {
			return nil, e
		}
	}
	if from > to {
		return nil, errInvalidParams("invalid block range params")
	}
	if to > head {
		return nil, errInvalidParams("block range extends beyond current head block")
	}
	if max := n.cfg.MaxLogRange; max > 0 && to-from+1 > max {
		return nil, &rpcError{
			Code:    CodeLimitExceeded,
			Message: fmt.Sprintf("block range too large: requested %d blocks, max is %d", to-from+1, max),
			Data:    map[string]any{"from": quantity(from), "to": quantity(from + max - 1), "limit": max},
		}
	}
	n.mu.RLock()
	blocks := append([]*block(nil), n.canon[from:to+1]...)
	n.mu.RUnlock()
	for i, b := range blocks {
		blocks[i] = n.full(b)
	}
	max := n.cfg.MaxLogResults
	size := 2
	if c.empty() {
		total := 0
		for _, b := range blocks {
			size += len(b.logsJSON) + 1
			total += len(b.Logs)
		}
		if max > 0 && total > max {
			return nil, tooManyResults(blocks, max)
		}
	}
	out := make([]byte, 1, size)
	out[0] = '['
	count := 0
	first := true
	for _, b := range blocks {
		before := len(out)
		if !first {
			out = append(out, ',')
		}
		var k int
		out, k = appendBlockLogs(out, b, &c.logFilter, false, 0)
		if k == 0 {
			out = out[:before]
			continue
		}
		first = false
		count += k
		if max > 0 && count > max {
			return nil, tooManyResults(blocks, max)
		}
	}
	return append(out, ']'), nil
}

// tooManyResults is Infura's answer to an oversized eth_getLogs, with a
// suggested smaller range in data.
func tooManyResults(blocks []*block, max int) *rpcError {
	from := blocks[0].Number
	to := from
	count := 0
	for _, b := range blocks {
		if count+len(b.Logs) > max {
			break
		}
		count += len(b.Logs)
		to = b.Number
	}
	return &rpcError{
		Code:    CodeLimitExceeded,
		Message: fmt.Sprintf("query returned more than %d results. Try with this block range [%s, %s].", max, quantity(from), quantity(to)),
		Data:    map[string]any{"from": quantity(from), "to": quantity(to), "limit": max},
	}
}

// appendBlockLogs appends the block's logs that match f, comma separated.
func appendBlockLogs(out []byte, b *block, f *logFilter, removed bool, _ int) ([]byte, int) {
	if len(b.Logs) == 0 {
		return out, 0
	}
	if f.empty() && !removed {
		return append(out, b.logsJSON...), len(b.Logs)
	}
	k := 0
	for i := range b.Logs {
		l := &b.Logs[i]
		if !f.match(l.Address, l.Topics) {
			continue
		}
		if k > 0 {
			out = append(out, ',')
		}
		if removed {
			out = appendLog(out, l, true)
		} else {
			out = append(out, b.logJSON(i)...)
		}
		k++
	}
	return out, k
}
