package ingest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// quantity is a JSON-RPC hex quantity ("0x1a").
type quantity uint64

func (q *quantity) UnmarshalJSON(b []byte) error {
	if len(b) < 4 || b[0] != '"' || b[len(b)-1] != '"' || b[1] != '0' || (b[2] != 'x' && b[2] != 'X') {
		return fmt.Errorf("bad quantity %s", b)
	}
	n, err := strconv.ParseUint(string(b[3:len(b)-1]), 16, 64)
	if err != nil {
		return fmt.Errorf("bad quantity %s: %w", b, err)
	}
	*q = quantity(n)
	return nil
}

// UnmarshalJSONFrom is the allocation-free path of go-json-experiment.
func (q *quantity) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	return q.UnmarshalJSON(v)
}

func hexNum(n uint64) string { return "0x" + strconv.FormatUint(n, 16) }

// header is the part of a block header the ingestor needs; newHeads
// notifications and eth_getBlockBy* answers both decode into it.
type header struct {
	Number     quantity `json:"number"`
	Hash       string   `json:"hash"`
	ParentHash string   `json:"parentHash"`
	LogsBloom  string   `json:"logsBloom"`
	Timestamp  quantity `json:"timestamp"`
}

// normalize validates a decoded header (see validateHeader) and lower-cases
// its hashes.
func (h *header) normalize() error {
	if err := validateHeader(h); err != nil {
		return err
	}
	h.Hash = strings.ToLower(h.Hash)
	h.ParentHash = strings.ToLower(h.ParentHash)
	return nil
}

// bloomEmpty reports whether the header's logsBloom has no bit set (the
// block has no logs). An absent bloom counts as not empty: we cannot know.
func (h *header) bloomEmpty() bool {
	if len(h.LogsBloom) < 3 {
		return false
	}
	for _, c := range h.LogsBloom[2:] {
		if c != '0' {
			return false
		}
	}
	return true
}

// ethLog is one element of an eth_getLogs answer.
type ethLog struct {
	Address     string   `json:"address"`
	Topics      []string `json:"topics"`
	Data        string   `json:"data"`
	BlockNumber quantity `json:"blockNumber"`
	BlockHash   string   `json:"blockHash"`
	TxHash      string   `json:"transactionHash"`
	TxIndex     quantity `json:"transactionIndex"`
	LogIndex    quantity `json:"logIndex"`
	Removed     bool     `json:"removed"`
}

// block is a header with its verified logs, ready to commit.
type block struct {
	header
	logs []ethLog
}

// appendEventJSON appends the hook.Event JSON of l exactly as
// json.Marshal(hook.Event) would produce it (same field order and escaping
// for the hex strings and names involved), without reflection: this is the
// hot path of ingestion. TestEventJSONMatchesHookEvent guards the equality.
func appendEventJSON(dst []byte, id, typ string, chainID uint64, chainName string, h *header, l *ethLog) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, id)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, typ)
	dst = append(dst, `,"chain":{"id":`...)
	dst = strconv.AppendUint(dst, chainID, 10)
	dst = append(dst, `,"name":`...)
	dst = appendString(dst, chainName)
	dst = append(dst, `},"block":{"number":`...)
	dst = strconv.AppendUint(dst, uint64(h.Number), 10)
	dst = append(dst, `,"hash":`...)
	dst = appendString(dst, h.Hash)
	if h.ParentHash != "" {
		dst = append(dst, `,"parent_hash":`...)
		dst = appendString(dst, h.ParentHash)
	}
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendUint(dst, uint64(h.Timestamp), 10)
	dst = append(dst, `},"transaction":{"hash":`...)
	dst = appendString(dst, strings.ToLower(l.TxHash))
	dst = append(dst, `,"index":`...)
	dst = strconv.AppendUint(dst, uint64(l.TxIndex), 10)
	dst = append(dst, `},"log":{"address":`...)
	dst = appendString(dst, strings.ToLower(l.Address))
	dst = append(dst, `,"topics":`...)
	if l.Topics == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, t := range l.Topics {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, strings.ToLower(t))
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"data":`...)
	dst = appendString(dst, strings.ToLower(l.Data))
	dst = append(dst, `,"index":`...)
	dst = strconv.AppendUint(dst, uint64(l.LogIndex), 10)
	return append(dst, "}}"...)
}

// appendString appends s as a JSON string. Plain ASCII (hex, ids, chain
// names) is copied; anything else goes through encoding/json so the
// escaping matches json.Marshal.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
