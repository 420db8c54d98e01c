package decode

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// TestTopicsAreReadAsHexBytesReadsThem: the allocation-free topic reader
// accepts and refuses what hexBytes (the data's reader) does.
func TestTopicsAreReadAsHexBytesReadsThem(t *testing.T) {
	h64 := strings.Repeat("ab", 32)
	for _, s := range []string{"0x" + h64, "0X" + h64, h64, "0x0X" + h64, "0x" + h64[1:], "0x" + h64[2:], "0x" + h64 + "00",
		"0x" + strings.ToUpper(h64), "0x" + h64[:63] + "g", "", "0x", "0x" + strings.Repeat("é", 32), "0x" + h64[:62] + " 1"} {
		var h common.Hash
		ok := decodeHash(&h, s)
		b, err := hexBytes(s)
		want := err == nil && len(b) == 32
		if ok != want || ok && !bytes.Equal(h[:], b) {
			t.Errorf("%q: decodeHash = %x, %v; hexBytes = %x, %v", s, h, ok, b, err)
		}
	}
}

// TestDecodeAllocatesLess keeps the per-log allocations of a Transfer
// down (36 before the precomputed plans and stack buffers).
func TestDecodeAllocatesLess(t *testing.T) {
	l := realLogs[0].log
	n := testing.AllocsPerRun(100, func() {
		if _, _, err := Builtin().Decode(&l); err != nil {
			t.Fatal(err)
		}
	})
	if n > 30 {
		t.Fatalf("decoding a Transfer allocates %v times, want at most 30", n)
	}
}
