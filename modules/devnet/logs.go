package devnet

// eth_getLogs and the filters of logs subscriptions: criteria parsing,
// matching and the result bounds of a real provider.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

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
		b := n.withHash(*c.blockHash)
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
