package decode

// The two forms of a decoded argument (see the package doc): typed for
// conditions (Decoded.Values), JSON-friendly for payloads (Decoded.Args).

import (
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strconv"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
)

// typed converts go-ethereum's Go value for an ABI type into the comparison
// form documented in the package comment.
func typed(v reflect.Value, t abi.Type) any {
	switch t.T {
	case abi.IntTy, abi.UintTy:
		switch x := v.Interface().(type) {
		case *big.Int:
			return x // go-ethereum makes a new one for every value it unpacks
		case int8:
			return big.NewInt(int64(x))
		case int16:
			return big.NewInt(int64(x))
		case int32:
			return big.NewInt(int64(x))
		case int64:
			return big.NewInt(x)
		case uint8:
			return new(big.Int).SetUint64(uint64(x))
		case uint16:
			return new(big.Int).SetUint64(uint64(x))
		case uint32:
			return new(big.Int).SetUint64(uint64(x))
		case uint64:
			return new(big.Int).SetUint64(x)
		}
	case abi.AddressTy:
		return [20]byte(v.Interface().(common.Address))
	case abi.BoolTy:
		return v.Bool()
	case abi.StringTy:
		return v.String()
	case abi.BytesTy:
		return append([]byte(nil), v.Bytes()...)
	case abi.FixedBytesTy, abi.HashTy, abi.FunctionTy:
		out := make([]byte, v.Len())
		for i := range out {
			out[i] = byte(v.Index(i).Uint())
		}
		return out
	case abi.SliceTy, abi.ArrayTy:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = typed(v.Index(i), *t.Elem)
		}
		return out
	case abi.TupleTy:
		out := make(map[string]any, len(t.TupleElems))
		for i, el := range t.TupleElems {
			name := t.TupleRawNames[i]
			if name == "" {
				name = strconv.Itoa(i)
			}
			out[name] = typed(v.Field(i), *el)
		}
		return out
	}
	return fmt.Sprint(v.Interface())
}

// jsonValue turns a typed value into its payload form.
func jsonValue(v any) any {
	switch x := v.(type) {
	case *big.Int:
		var buf [80]byte // a 256-bit value has at most 78 digits and a sign
		return string(x.Append(buf[:0], 10))
	case [20]byte:
		return hexString(x[:])
	case []byte:
		return hexString(x)
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = jsonValue(x[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	}
	return v
}

// MarshalArgs is json.Marshal of the decoded arguments (for tests and logs).
func (d *Decoded) MarshalArgs() string {
	b, _ := json.Marshal(d.Args)
	return string(b)
}
