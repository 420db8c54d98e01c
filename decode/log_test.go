package decode

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/ethhook/ethhook/hook"
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
	if n > 24 {
		t.Fatalf("decoding a Transfer allocates %v times, want at most 24", n)
	}
}

// referenceDecode is Event.Decode as it was before the plans: every
// indexed argument through go-ethereum's ParseTopicsIntoMap.
func referenceDecode(e *Event, l *hook.Log) (*Decoded, error) {
	topics := make([]common.Hash, len(l.Topics))
	for i, t := range l.Topics {
		b, err := hexBytes(t)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("topic %d", i)
		}
		topics[i] = common.BytesToHash(b)
	}
	data, err := hexBytes(l.Data)
	if err != nil {
		return nil, err
	}
	ev := &e.ev
	if e.Positional {
		ev = e.variant(len(topics) - 1).ev
	}
	values := map[string]any{}
	var indexed abi.Arguments
	for _, in := range ev.Inputs {
		if in.Indexed {
			indexed = append(indexed, in)
		}
	}
	if err := abi.ParseTopicsIntoMap(values, indexed, topics[1:]); err != nil {
		return nil, err
	}
	nonIdx := ev.Inputs.NonIndexed()
	vals, err := nonIdx.UnpackValues(data)
	if err != nil {
		return nil, err
	}
	for i, in := range nonIdx {
		values[in.Name] = vals[i]
	}
	d := &Decoded{Name: e.Name, Signature: e.Signature, Args: map[string]any{}, Values: map[string]any{}}
	for _, in := range ev.Inputs {
		v := values[in.Name]
		if in.Indexed && isHashedInTopic(in.Type) {
			h := v.(common.Hash)
			d.Values[in.Name], d.Args[in.Name] = h.Bytes(), "0x"+hex.EncodeToString(h.Bytes())
			continue
		}
		tv := typed(reflect.ValueOf(v), in.Type)
		d.Values[in.Name], d.Args[in.Name] = tv, jsonValue(tv)
	}
	return d, nil
}

func TestDecodeWithPlansAgreesWithGoEthereum(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	word := func(kind int) string {
		var h common.Hash
		switch kind {
		case 0: // small: fits uint8, a bool, an address
			h[31] = byte(rng.IntN(3))
		case 1: // an address
			for i := 12; i < 32; i++ {
				h[i] = byte(rng.Uint32())
			}
		default:
			for i := range h {
				h[i] = byte(rng.Uint32())
			}
		}
		return h.Hex()
	}
	for _, decl := range []string{
		"event A(address indexed a, uint256 indexed b, uint8 indexed c, uint256 v)",
		"event B(int256 indexed a, bool indexed b, bytes32 indexed c, address v)",
		"event C(string indexed s, uint256[] indexed xs, uint64 indexed n, bytes data)",
		"event D(address indexed from, address indexed to, uint256 indexed id)",
		"B(uint256,address,int8,uint256)", // positional: any count indexed
	} {
		e, err := ParseEvent(decl)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 300; i++ {
			n := e.nIdx
			if e.Positional {
				n = rng.IntN(len(e.Args) + 1)
			}
			l := hook.Log{Topics: []string{e.Topic0}}
			for j := 0; j < n; j++ {
				l.Topics = append(l.Topics, word(rng.IntN(3)))
			}
			var nonIdx abi.Arguments
			var vals []any
			for j, a := range e.Args {
				if a.Indexed || e.Positional && j < n {
					continue
				}
				nonIdx = append(nonIdx, abi.Argument{Type: a.Type})
				switch a.Type.T {
				case abi.AddressTy:
					vals = append(vals, common.BytesToAddress([]byte{byte(i)}))
				case abi.BytesTy:
					vals = append(vals, []byte{1, 2, byte(i)})
				case abi.IntTy:
					if a.Type.Size == 8 {
						vals = append(vals, int8(i))
					} else {
						vals = append(vals, big.NewInt(int64(-i)))
					}
				default:
					vals = append(vals, big.NewInt(int64(i)))
				}
			}
			data, err := nonIdx.Pack(vals...)
			if err != nil {
				t.Fatal(err)
			}
			l.Data = "0x" + hex.EncodeToString(data)
			got, gerr := e.Decode(&l)
			want, werr := referenceDecode(e, &l)
			if (gerr == nil) != (werr == nil) {
				t.Fatalf("%s, %v: Decode error %v, go-ethereum error %v", decl, l.Topics, gerr, werr)
			}
			if gerr == nil && (!reflect.DeepEqual(got.Args, want.Args) || !reflect.DeepEqual(got.Values, want.Values)) {
				t.Fatalf("%s, %v:\n got %v %v\nwant %v %v", decl, l.Topics, got.Args, got.Values, want.Args, want.Values)
			}
		}
	}
}
