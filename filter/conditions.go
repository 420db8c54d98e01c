package filter

// Conditions: the checked tree of an endpoint's where clause (parsed by
// parse.go), evaluated on a log's decoded arguments.

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/ethhook/ethhook/decode"
)

type node interface {
	eval(vals map[string]any) bool
}

type andNode []node

func (n andNode) eval(v map[string]any) bool {
	for _, k := range n {
		if !k.eval(v) {
			return false
		}
	}
	return true
}

type orNode []node

func (n orNode) eval(v map[string]any) bool {
	for _, k := range n {
		if k.eval(v) {
			return true
		}
	}
	return false
}

type notNode struct{ n node }

func (n notNode) eval(v map[string]any) bool { return !n.n.eval(v) }

type kind int

const (
	kInt kind = iota
	kAddress
	kBool
	kBytes
	kString
	kHashed // indexed string/bytes: the log holds keccak256 of the value
)

func (k kind) String() string {
	return [...]string{"integer", "address", "bool", "bytes", "string", "indexed (hashed) value"}[k]
}

type cmpNode struct {
	arg  string
	op   string
	kind kind
	lits []any // *big.Int, [20]byte, bool, []byte, string
}

func (n *cmpNode) eval(vals map[string]any) bool {
	v, ok := vals[n.arg]
	if !ok {
		return false
	}
	switch n.op {
	case "in":
		for _, l := range n.lits {
			if equal(v, l) {
				return true
			}
		}
		return false
	case "==":
		return equal(v, n.lits[0])
	case "!=":
		return !equal(v, n.lits[0])
	}
	a, ok1 := v.(*big.Int)
	b, ok2 := n.lits[0].(*big.Int)
	if !ok1 || !ok2 {
		return false
	}
	c := a.Cmp(b)
	switch n.op {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}

func equal(v, l any) bool {
	switch x := v.(type) {
	case *big.Int:
		y, ok := l.(*big.Int)
		return ok && x.Cmp(y) == 0
	case [20]byte:
		y, ok := l.([20]byte)
		return ok && x == y
	case bool:
		y, ok := l.(bool)
		return ok && x == y
	case []byte:
		y, ok := l.([]byte)
		return ok && string(x) == string(y)
	case string:
		y, ok := l.(string)
		return ok && x == y
	}
	return false
}

// argType is what one candidate event says about an argument.
type argType struct {
	kind kind
	typ  abi.Type
}

func kindOf(a decode.Arg) (argType, error) {
	t := a.Type
	if a.Indexed {
		switch t.T {
		case abi.StringTy, abi.BytesTy, abi.SliceTy, abi.ArrayTy, abi.TupleTy:
			if t.T == abi.StringTy || t.T == abi.BytesTy {
				return argType{kind: kHashed, typ: t}, nil
			}
			return argType{}, fmt.Errorf("argument %q (indexed %s) is only a hash in the log; conditions on it are not supported", a.Name, t.String())
		}
	}
	switch t.T {
	case abi.IntTy, abi.UintTy:
		return argType{kind: kInt, typ: t}, nil
	case abi.AddressTy:
		return argType{kind: kAddress, typ: t}, nil
	case abi.BoolTy:
		return argType{kind: kBool, typ: t}, nil
	case abi.BytesTy, abi.FixedBytesTy, abi.HashTy:
		return argType{kind: kBytes, typ: t}, nil
	case abi.StringTy:
		return argType{kind: kString, typ: t}, nil
	}
	return argType{}, fmt.Errorf("argument %q has type %s; conditions work on integers, address, bool, bytes and string", a.Name, t.String())
}

func check(a *ast, cands []*decode.Event) (node, error) {
	switch a.op {
	case "and", "or":
		kids := make([]node, 0, len(a.kids))
		for _, k := range a.kids {
			n, err := check(k, cands)
			if err != nil {
				return nil, err
			}
			kids = append(kids, n)
		}
		if a.op == "and" {
			return andNode(kids), nil
		}
		return orNode(kids), nil
	case "not":
		n, err := check(a.kids[0], cands)
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	}
	var types []argType
	for _, e := range cands {
		arg, ok := e.Arg(a.arg)
		if !ok {
			continue
		}
		t, err := kindOf(arg)
		if err != nil {
			return nil, err
		}
		types = append(types, t)
	}
	if len(types) == 0 {
		return nil, unknownArg(a.arg, cands)
	}
	for _, t := range types[1:] {
		if t.kind != types[0].kind {
			return nil, fmt.Errorf("argument %q is a %s in one event and a %s in another", a.arg, types[0].kind, t.kind)
		}
	}
	k := types[0].kind
	switch a.cmp {
	case "<", "<=", ">", ">=":
		if k != kInt {
			return nil, fmt.Errorf("%s %s: ordering needs an integer argument, %q is a %s", a.arg, a.cmp, a.arg, k)
		}
	}
	if k == kBool && a.cmp == "in" {
		return nil, fmt.Errorf("%s in (...): use == or != with a bool", a.arg)
	}
	n := &cmpNode{arg: a.arg, op: a.cmp, kind: k}
	for _, l := range a.lits {
		var v any
		for _, t := range types {
			lv, err := literal(l, t)
			if err != nil {
				return nil, fmt.Errorf("%s %s %s: %v", a.arg, a.cmp, l.text, err)
			}
			v = lv
		}
		n.lits = append(n.lits, v)
	}
	return n, nil
}

func unknownArg(name string, cands []*decode.Event) error {
	var sigs, known []string
	seenSig, seenArg := map[string]bool{}, map[string]bool{}
	for _, e := range cands {
		if !seenSig[e.Signature] {
			seenSig[e.Signature] = true
			sigs = append(sigs, e.Signature)
		}
		for _, n := range e.ArgNames() {
			if !seenArg[n] {
				seenArg[n] = true
				known = append(known, n)
			}
		}
	}
	return fmt.Errorf("unknown argument %q of %s; known: %s", name, strings.Join(sigs, " or "), strings.Join(known, ", "))
}

// literal converts a literal token to the comparison value for an argument type.
func literal(l token, t argType) (any, error) {
	switch t.kind {
	case kInt:
		var v *big.Int
		var ok bool
		switch l.kind {
		case "num":
			v, ok = new(big.Int).SetString(l.text, 10)
		case "hex":
			v, ok = new(big.Int).SetString(l.text[2:], 16)
		}
		if !ok {
			return nil, fmt.Errorf("the argument is a %s; %q is not a decimal or 0x number", t.typ.String(), l.text)
		}
		size := t.typ.Size
		if t.typ.T == abi.UintTy {
			if v.Sign() < 0 || v.BitLen() > size {
				return nil, fmt.Errorf("%s is out of range for %s", l.text, t.typ.String())
			}
		} else {
			lim := new(big.Int).Lsh(big.NewInt(1), uint(size-1))
			if v.Cmp(lim) >= 0 || v.Cmp(new(big.Int).Neg(lim)) < 0 {
				return nil, fmt.Errorf("%s is out of range for %s", l.text, t.typ.String())
			}
		}
		return v, nil
	case kAddress:
		s := strings.ToLower(l.text)
		if l.kind != "hex" || !isHex(s, 20) {
			return nil, fmt.Errorf("%q is not a 0x address of 40 hex digits", l.text)
		}
		var a [20]byte
		_, _ = hex.Decode(a[:], []byte(s[2:]))
		return a, nil
	case kBool:
		if l.kind == "ident" {
			return strings.EqualFold(l.text, "true"), nil
		}
		return nil, fmt.Errorf("%q is not true or false", l.text)
	case kBytes:
		if l.kind != "hex" {
			return nil, fmt.Errorf("%q is not 0x hex bytes", l.text)
		}
		b, err := hex.DecodeString(strings.ToLower(l.text[2:]))
		if err != nil {
			return nil, fmt.Errorf("%q is not 0x hex bytes (even number of hex digits)", l.text)
		}
		if t.typ.T == abi.FixedBytesTy && len(b) != t.typ.Size {
			return nil, fmt.Errorf("%s is %d bytes, %s needs %d", l.text, len(b), t.typ.String(), t.typ.Size)
		}
		return b, nil
	case kString:
		if l.kind != "str" {
			return nil, fmt.Errorf("the argument is a string: quote the value, e.g. \"%s\"", l.text)
		}
		return l.text, nil
	case kHashed:
		// The log holds keccak256(value): compare hashes. A 32-byte 0x literal
		// is taken as the hash itself.
		if l.kind == "hex" && isHex(strings.ToLower(l.text), 32) {
			b, _ := hex.DecodeString(strings.ToLower(l.text[2:]))
			return b, nil
		}
		if l.kind == "str" && t.typ.T == abi.StringTy {
			return crypto.Keccak256([]byte(l.text)), nil
		}
		if l.kind == "hex" && t.typ.T == abi.BytesTy {
			b, err := hex.DecodeString(strings.ToLower(l.text[2:]))
			if err == nil {
				return crypto.Keccak256(b), nil
			}
		}
		return nil, fmt.Errorf("%q does not fit an indexed %s", l.text, t.typ.String())
	}
	return nil, fmt.Errorf("unsupported value %q", l.text)
}
