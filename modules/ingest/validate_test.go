package ingest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func goodLog() ethLog {
	return ethLog{
		Address:     "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", // checksummed: mixed case is fine
		Topics:      []string{"0xDDF252AD1BE2C89B69C2B068FC378DAA952BA7F163C4A11628F55A4DF523B3EF", hash(1)},
		Data:        "0x00ff",
		BlockNumber: 100, BlockHash: hash(7), TxHash: hash(9), TxIndex: 3, LogIndex: 17,
	}
}

func TestValidateLogRefusesWhatBreaksTheSpec(t *testing.T) {
	cases := []struct {
		name string
		edit func(l *ethLog)
		ok   bool
	}{
		{"good", func(*ethLog) {}, true},
		{"no topics, empty data", func(l *ethLog) { l.Topics, l.Data = nil, "0x" }, true},
		{"four topics", func(l *ethLog) { l.Topics = []string{hash(1), hash(2), hash(3), hash(4)} }, true},
		{"upper-case 0X prefix", func(l *ethLog) { l.Address = "0X" + l.Address[2:] }, true},
		{"max indexes", func(l *ethLog) { l.LogIndex, l.TxIndex = maxIndex, maxIndex }, true},
		{"data at the cap", func(l *ethLog) { l.Data = "0x" + strings.Repeat("ab", maxLogDataBytes) }, true},

		{"address not hex", func(l *ethLog) { l.Address = "0xZZb86991c6218b36c1d19D4a2e9Eb0cE3606eB48" }, false},
		{"address too short", func(l *ethLog) { l.Address = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb" }, false},
		{"address 32 bytes", func(l *ethLog) { l.Address = hash(5) }, false},
		{"address without 0x", func(l *ethLog) { l.Address = "00" + l.Address[2:] }, false},
		{"address with markup", func(l *ethLog) { l.Address = `<script>alert(1)</script>` }, false},
		{"empty address", func(l *ethLog) { l.Address = "" }, false},
		{"five topics", func(l *ethLog) { l.Topics = []string{hash(1), hash(2), hash(3), hash(4), hash(5)} }, false},
		{"topic short", func(l *ethLog) { l.Topics[1] = "0x01" }, false},
		{"topic not hex", func(l *ethLog) { l.Topics[1] = "0x" + strings.Repeat("g", 64) }, false},
		{"data odd length", func(l *ethLog) { l.Data = "0x0" }, false},
		{"data not hex", func(l *ethLog) { l.Data = "0xhello!" }, false},
		{"data without 0x", func(l *ethLog) { l.Data = "00ff" }, false},
		{"data empty string", func(l *ethLog) { l.Data = "" }, false},
		{"data above the cap", func(l *ethLog) { l.Data = "0x" + strings.Repeat("ab", maxLogDataBytes+1) }, false},
		{"blockHash short", func(l *ethLog) { l.BlockHash = "0x1234" }, false},
		{"transactionHash missing", func(l *ethLog) { l.TxHash = "" }, false},
		{"transactionHash not hex", func(l *ethLog) { l.TxHash = "0x" + strings.Repeat("z", 64) }, false},
		{"blockNumber 2^63", func(l *ethLog) { l.BlockNumber = 1 << 63 }, false},
		{"blockNumber 2^53", func(l *ethLog) { l.BlockNumber = maxBlockNumber + 1 }, false},
		{"logIndex above int32", func(l *ethLog) { l.LogIndex = maxIndex + 1 }, false},
		{"transactionIndex 2^64-1", func(l *ethLog) { l.TxIndex = ^quantity(0) }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := goodLog()
			c.edit(&l)
			err := validateLog(&l)
			if c.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !c.ok && !errors.Is(err, errInvalidAnswer) {
				t.Fatalf("accepted (err %v)", err)
			}
		})
	}
	logs := []ethLog{goodLog(), goodLog()}
	logs[1].Data = "0xabc"
	if err := validateLogs(logs); !errors.Is(err, errInvalidAnswer) {
		t.Fatalf("one bad log of two: %v", err)
	}
}

func TestValidateHeaderRefusesWhatBreaksTheSpec(t *testing.T) {
	bloom := "0x" + strings.Repeat("0", 512)
	cases := []struct {
		name string
		json string
		ok   bool
	}{
		{"good", `{"number":"0x10","hash":"` + hash(1) + `","parentHash":"` + hash(0) + `","timestamp":"0x65f0a1b0","logsBloom":"` + bloom + `"}`, true},
		{"no bloom", `{"number":"0x10","hash":"` + hash(1) + `","parentHash":"` + hash(0) + `","timestamp":"0x5"}`, true},
		{"upper-case hashes", `{"number":"0x10","hash":"0x` + strings.ToUpper(hash(0xabc)[2:]) + `","parentHash":"` + hash(0) + `","timestamp":"0x5"}`, true},
		{"hash without 0x", `{"number":"0x10","hash":"` + strings.Repeat("0", 64) + `","parentHash":"` + hash(0) + `","timestamp":"0x5"}`, false},
		{"largest block number", `{"number":"0x1fffffffffffff","hash":"` + hash(1) + `","parentHash":"` + hash(0) + `","timestamp":"0x5"}`, true},

		{"block number 2^64-1", `{"number":"0xffffffffffffffff","hash":"` + hash(1) + `","parentHash":"` + hash(0) + `","timestamp":"0x5"}`, false},
		{"block number 2^63", `{"number":"0x8000000000000000","hash":"` + hash(1) + `","parentHash":"` + hash(0) + `","timestamp":"0x5"}`, false},
		{"block number 2^53", `{"number":"0x20000000000000","hash":"` + hash(1) + `","parentHash":"` + hash(0) + `","timestamp":"0x5"}`, false},
		{"timestamp 2^63", `{"number":"0x10","hash":"` + hash(1) + `","parentHash":"` + hash(0) + `","timestamp":"0x8000000000000000"}`, false},
		{"hash not hex", `{"number":"0x10","hash":"0x` + strings.Repeat("q", 64) + `","parentHash":"` + hash(0) + `","timestamp":"0x5"}`, false},
		{"parent short", `{"number":"0x10","hash":"` + hash(1) + `","parentHash":"0x00","timestamp":"0x5"}`, false},
		{"bloom short", `{"number":"0x10","hash":"` + hash(1) + `","parentHash":"` + hash(0) + `","timestamp":"0x5","logsBloom":"0x00"}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h header
			if err := json.Unmarshal([]byte(c.json), &h); err != nil {
				t.Fatalf("decode: %v", err)
			}
			err := h.normalize()
			if c.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !c.ok && !errors.Is(err, errInvalidAnswer) {
				t.Fatalf("accepted (err %v)", err)
			}
		})
	}
}

// TestQuantityParsing: hex quantities above 64 bits or not hex are decode
// errors; leading zeros (some nodes send them) are accepted.
func TestQuantityParsing(t *testing.T) {
	for in, want := range map[string]uint64{`"0x0"`: 0, `"0x1a"`: 26, `"0x001a"`: 26, `"0X1A"`: 26, `"0xffffffffffffffff"`: 1<<64 - 1} {
		var q quantity
		if err := json.Unmarshal([]byte(in), &q); err != nil || uint64(q) != want {
			t.Errorf("%s: %d %v, want %d", in, uint64(q), err, want)
		}
	}
	for _, in := range []string{`"0x"`, `"0x10000000000000000"`, `"12"`, `12`, `"0x-1"`, `"0x+1"`, `"0x1_0"`, `"0xg"`, `null`} {
		var q quantity
		if err := json.Unmarshal([]byte(in), &q); err == nil {
			t.Errorf("%s: accepted as %d", in, uint64(q))
		}
	}
}
