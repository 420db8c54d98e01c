package ingest

import (
	"errors"
	"fmt"
)

// What a node's answers may claim. Everything a node sends is checked
// against these bounds right after it is decoded, before it is used: a
// header or log that breaks one is refused with its whole answer (counted
// in invalid_answers_total, logged, and handled like a failed call:
// fetched again or the session is given up and the next URL tried). Nothing
// of such an answer is ever published.
const (
	// maxBlockNumber bounds block numbers (and the heads that start a
	// backfill). They are stored in Postgres bigint columns and sent in
	// webhooks as JSON numbers, which JavaScript receivers read as float64,
	// exact only up to 2^53-1; the busiest chains are below 2^30 blocks.
	maxBlockNumber = 1<<53 - 1
	// maxTimestamp bounds block timestamps (seconds) for the same reasons
	// (2^53 s is far beyond any real clock).
	maxTimestamp = 1<<53 - 1
	// maxIndex bounds logIndex and transactionIndex: they fit an int32
	// wherever they are stored; a block holds at most some hundred
	// thousand logs.
	maxIndex = 1<<31 - 1
	// maxTopics: LOG0..LOG4 carry at most four topics.
	maxTopics = 4
	// maxLogDataBytes bounds one log's data. Data costs 8 gas a byte plus
	// quadratic memory expansion: 8 MiB in one log needs about 200M gas in
	// one transaction, beyond any chain's limit today.
	maxLogDataBytes = 8 << 20
)

// errInvalidAnswer: the node's answer breaks the JSON-RPC spec or our
// bounds (see validateHeader, validateLog).
var errInvalidAnswer = errors.New("invalid answer from node")

// isHexN reports whether s is "0x" followed by exactly n hex digits (either
// case: checksummed addresses are mixed case).
func isHexN(s string, n int) bool {
	return len(s) == 2+n && hasHexPrefix(s) && allHex(s[2:])
}

func hasHexPrefix(s string) bool { return len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') }

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// validateHeader checks a block header as decoded (before normalize).
func validateHeader(h *header) error {
	switch {
	case uint64(h.Number) > maxBlockNumber:
		return fmt.Errorf("%w: block number %d above %d", errInvalidAnswer, uint64(h.Number), uint64(maxBlockNumber))
	case !isHexN(h.Hash, 64):
		return fmt.Errorf("%w: block %d: hash %.80q is not 32 bytes of hex", errInvalidAnswer, uint64(h.Number), h.Hash)
	case !isHexN(h.ParentHash, 64):
		return fmt.Errorf("%w: block %d: parentHash %.80q is not 32 bytes of hex", errInvalidAnswer, uint64(h.Number), h.ParentHash)
	case uint64(h.Timestamp) > maxTimestamp:
		return fmt.Errorf("%w: block %d: timestamp %d above %d", errInvalidAnswer, uint64(h.Number), uint64(h.Timestamp), uint64(maxTimestamp))
	case h.LogsBloom != "" && !isHexN(h.LogsBloom, 512):
		return fmt.Errorf("%w: block %d: logsBloom is not 256 bytes of hex", errInvalidAnswer, uint64(h.Number))
	}
	return nil
}

// validateLog checks one log of an eth_getLogs answer. Whether it belongs
// to the block asked for is checkLogs' job.
func validateLog(l *ethLog) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: log %d of block %d: %s", errInvalidAnswer, uint64(l.LogIndex), uint64(l.BlockNumber), fmt.Sprintf(format, args...))
	}
	switch {
	case !isHexN(l.Address, 40):
		return bad("address %.80q is not 20 bytes of hex", l.Address)
	case len(l.Topics) > maxTopics:
		return bad("%d topics, at most %d", len(l.Topics), maxTopics)
	case len(l.Data) > 2+2*maxLogDataBytes:
		return bad("data of %d bytes, at most %d", (len(l.Data)-2)/2, maxLogDataBytes)
	case !hasHexPrefix(l.Data) || len(l.Data)%2 != 0 || !allHex(l.Data[2:]):
		return bad("data %.80q is not 0x-prefixed hex of whole bytes", l.Data)
	case !isHexN(l.BlockHash, 64):
		return bad("blockHash %.80q is not 32 bytes of hex", l.BlockHash)
	case !isHexN(l.TxHash, 64):
		return bad("transactionHash %.80q is not 32 bytes of hex", l.TxHash)
	case uint64(l.BlockNumber) > maxBlockNumber:
		return bad("blockNumber above %d", uint64(maxBlockNumber))
	case uint64(l.LogIndex) > maxIndex:
		return bad("logIndex above %d", maxIndex)
	case uint64(l.TxIndex) > maxIndex:
		return bad("transactionIndex %d above %d", uint64(l.TxIndex), maxIndex)
	}
	for _, t := range l.Topics {
		if !isHexN(t, 64) {
			return bad("topic %.80q is not 32 bytes of hex", t)
		}
	}
	return nil
}

// validateLogs checks every log of an answer: one bad log refuses it all.
func validateLogs(logs []ethLog) error {
	for i := range logs {
		if err := validateLog(&logs[i]); err != nil {
			return err
		}
	}
	return nil
}
