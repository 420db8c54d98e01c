package decode

// Reading event definitions: a contract's ABI JSON or one declaration,
// into interned *Events. bounds.go refuses oversized input before this
// code or go-ethereum's abi package sees it.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
)

// ParseABI reads the events of a contract ABI (JSON array). An ABI over
// the bounds (MaxABIBytes, MaxABIEntries, MaxArgs, the type bounds) is
// refused with ErrLimit before it is parsed.
func ParseABI(raw []byte) ([]*Event, error) {
	if err := checkABI(raw); err != nil {
		return nil, err
	}
	parsed, err := abi.JSON(strings.NewReader(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("parse ABI JSON: %w", err)
	}
	names := make([]string, 0, len(parsed.Events))
	for n := range parsed.Events {
		names = append(names, n)
	}
	sortStrings(names)
	out := make([]*Event, 0, len(names))
	for _, n := range names {
		ev := parsed.Events[n]
		if ev.Anonymous {
			continue // no topic0 to recognise it by
		}
		for i := range ev.Inputs {
			if ev.Inputs[i].Name == "" {
				ev.Inputs[i].Name = "arg" + strconv.Itoa(i)
			}
		}
		ev = abi.NewEvent(ev.Name, ev.RawName, false, ev.Inputs)
		out = append(out, newEvent(ev, false))
	}
	return out, nil
}

// ParseEvent reads one event declaration: human-readable
// ("event Transfer(address indexed from, address indexed to, uint256 value)")
// or a bare signature ("Transfer(address,address,uint256)"). A bare
// signature that the built-in set defines takes the built-in names and
// indexed markers; any other is Positional. A declaration over the bounds
// (MaxDeclLen, MaxArgs, the type bounds) is refused with ErrLimit before
// it is parsed.
func ParseEvent(decl string) (*Event, error) {
	if len(decl) > MaxDeclLen {
		return nil, limitf("event declaration is %d characters, at most %d (MaxDeclLen)", len(decl), MaxDeclLen)
	}
	s := strings.TrimSpace(decl)
	s = strings.TrimSuffix(s, ";")
	s = strings.TrimSpace(strings.TrimPrefix(s, "event "))
	open := strings.IndexByte(s, '(')
	if open <= 0 || !strings.HasSuffix(s, ")") {
		return nil, fmt.Errorf("%q is not an event declaration like Transfer(address,address,uint256)", decl)
	}
	name := strings.TrimSpace(s[:open])
	if !isIdent(name) {
		return nil, fmt.Errorf("%q: event name %q is not an identifier", decl, name)
	}
	body := strings.TrimSpace(s[open+1 : len(s)-1])
	if strings.ContainsAny(body, "()") {
		return nil, fmt.Errorf("%q: tuple arguments are not supported in declarations; give the ABI JSON instead", decl)
	}
	var params []string
	if body != "" {
		if n := strings.Count(body, ",") + 1; n > MaxArgs {
			return nil, limitf("%.40q...: %d arguments, at most %d (MaxArgs)", decl, n, MaxArgs)
		}
		params = strings.Split(body, ",")
	}
	args := make(abi.Arguments, 0, len(params))
	named, positional := false, true
	for i, p := range params {
		fields := strings.Fields(p)
		if len(fields) == 0 {
			return nil, fmt.Errorf("%q: argument %d is empty", decl, i+1)
		}
		typ, err := parseType(fields[0])
		if err != nil {
			return nil, fmt.Errorf("%q: argument %d: %w", decl, i+1, err)
		}
		a := abi.Argument{Type: typ}
		rest := fields[1:]
		if len(rest) > 0 && rest[0] == "indexed" {
			a.Indexed = true
			positional = false
			rest = rest[1:]
		}
		switch len(rest) {
		case 0:
			a.Name = "arg" + strconv.Itoa(i)
		case 1:
			if !isIdent(rest[0]) {
				return nil, fmt.Errorf("%q: argument %d: name %q is not an identifier", decl, i+1, rest[0])
			}
			a.Name = rest[0]
			named = true
		default:
			return nil, fmt.Errorf("%q: argument %d: expected `type [indexed] [name]`, got %q", decl, i+1, strings.TrimSpace(p))
		}
		args = append(args, a)
	}
	if named {
		positional = false
	}
	seen := map[string]bool{}
	for _, a := range args {
		if seen[a.Name] {
			return nil, fmt.Errorf("%q: argument name %q is used twice", decl, a.Name)
		}
		seen[a.Name] = true
	}
	ev := abi.NewEvent(name, name, false, args)
	if positional && len(args) > 0 {
		// A bare signature: borrow names from the built-in set when it knows it.
		// (Built-in declarations are all named, so this never runs while
		// the built-ins load.)
		loadBuiltins()
		if b := builtinBySig(ev.Sig); b != nil {
			return b, nil
		}
	}
	return newEvent(ev, positional && len(args) > 0), nil
}

func parseType(t string) (abi.Type, error) {
	if _, err := checkTypeString(t); err != nil {
		return abi.Type{}, err
	}
	base, suffix := t, ""
	if i := strings.IndexByte(t, '['); i >= 0 {
		base, suffix = t[:i], t[i:]
	}
	switch base {
	case "uint":
		base = "uint256"
	case "int":
		base = "int256"
	case "byte":
		base = "bytes1"
	}
	for _, p := range []string{"uint", "int", "bytes"} {
		if n, ok := strings.CutPrefix(base, p); ok && n != "" {
			bits, err := strconv.Atoi(n)
			max, step := 256, 8
			if p == "bytes" {
				max, step = 32, 1
			}
			if err != nil || bits < step || bits > max || bits%step != 0 {
				return abi.Type{}, fmt.Errorf("unknown type %q", t)
			}
		}
	}
	typ, err := abi.NewType(base+suffix, "", nil)
	if err != nil {
		return abi.Type{}, fmt.Errorf("unknown type %q", t)
	}
	return typ, nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9' {
			continue
		}
		return false
	}
	return true
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
