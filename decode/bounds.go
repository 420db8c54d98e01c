package decode

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Bounds on what ParseEvent and ParseABI accept, checked before
// go-ethereum's abi package sees the input. abi.NewType recurses once per
// array level and rescans and copies the type string at each, so its time
// and memory grow with the square of the nesting: 16,000 levels of [] (a
// 32 KB signature) took 1.2 s and 260 MB, 200,000 levels took 17 GB. Every
// number is far above what real contracts declare and low enough that the
// worst accepted input costs little.
const (
	// MaxTypeLen bounds one type string ("uint256[2][]", "tuple[]"); real
	// ones are a few dozen characters.
	MaxTypeLen = 1024
	// MaxArrayDepth bounds the array suffixes of one type (uint256[][][]
	// has 3); Solidity code rarely goes past 2.
	MaxArrayDepth = 8
	// MaxTupleDepth bounds structs inside structs (a tuple argument is
	// depth 1): each level is another recursion in abi.NewType.
	MaxTupleDepth = 8
	// MaxComponents bounds the fields of one tuple.
	MaxComponents = 64
	// MaxArgs bounds the arguments of one event, and the inputs and the
	// outputs of any ABI entry; the EVM's stack keeps real events far below.
	MaxArgs = 64
	// MaxTypeCells bounds the values one argument type holds when every
	// dynamic array holds one (uint256[64][64] holds 4,096). It bounds the
	// Go type go-ethereum builds for a fixed-size array (reflect.ArrayOf
	// panics past the address space, e.g. uint256[2305843009213693952]) and
	// the work to decode one value.
	MaxTypeCells = 4096
	// MaxDeclLen bounds one event declaration or signature
	// ("event Transfer(address indexed from, ...)").
	MaxDeclLen = 4096
	// MaxABIBytes bounds an ABI's JSON; the ABIs of large verified
	// contracts (routers, pools, diamonds) are 20-150 KiB.
	MaxABIBytes = 256 << 10
	// MaxABIEntries bounds the entries (functions, events, errors, ...) of
	// an ABI.
	MaxABIEntries = 2000
)

// ErrLimit is wrapped by every error about a bound above, so callers can
// tell "too big" from "malformed".
var ErrLimit = errors.New("over the limit")

func limitf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrLimit, fmt.Sprintf(format, args...))
}

// checkTypeString checks one type string's length, array depth and fixed
// array sizes without building it, and returns the cells its arrays
// multiply an element by (uint256[2][3]: 6).
func checkTypeString(t string) (int, error) {
	if len(t) > MaxTypeLen {
		return 0, limitf("type is %d characters, at most %d (MaxTypeLen)", len(t), MaxTypeLen)
	}
	open := strings.IndexByte(t, '[')
	if open < 0 {
		return 1, nil
	}
	if d := strings.Count(t, "["); d > MaxArrayDepth {
		return 0, limitf("type %.40q... nests arrays %d deep, at most %d (MaxArrayDepth)", t, d, MaxArrayDepth)
	}
	cells := 1
	for rest := t[open:]; rest != ""; {
		end := strings.IndexByte(rest, ']')
		if rest[0] != '[' || end < 0 {
			return 0, fmt.Errorf("type %q: malformed array suffix", t)
		}
		if size := rest[1:end]; size != "" {
			n, err := strconv.Atoi(size)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("type %q: array size %q is not a positive number", t, size)
			}
			if n > MaxTypeCells || cells*n > MaxTypeCells {
				return 0, limitf("type %q holds more than %d values (MaxTypeCells)", t, MaxTypeCells)
			}
			cells *= n
		}
		rest = rest[end+1:]
	}
	return cells, nil
}

// abiParam is the part of an ABI argument the bounds look at.
type abiParam struct {
	Type       string     `json:"type"`
	Components []abiParam `json:"components"`
}

type abiEntry struct {
	Type    string     `json:"type"`
	Name    string     `json:"name"`
	Inputs  []abiParam `json:"inputs"`
	Outputs []abiParam `json:"outputs"`
}

// checkABI checks an ABI's size and shape against the bounds before
// go-ethereum parses it. Reading it into these small structs is linear in
// its size (and encoding/json limits nesting on its own).
func checkABI(raw []byte) error {
	if len(raw) > MaxABIBytes {
		return limitf("ABI is %d bytes, at most %d (MaxABIBytes)", len(raw), MaxABIBytes)
	}
	var entries []abiEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return fmt.Errorf("parse ABI JSON: %w", err)
	}
	if len(entries) > MaxABIEntries {
		return limitf("ABI has %d entries, at most %d (MaxABIEntries)", len(entries), MaxABIEntries)
	}
	for i, e := range entries {
		what := fmt.Sprintf("ABI entry %d (%s %.40s)", i, e.Type, e.Name)
		for _, list := range [][]abiParam{e.Inputs, e.Outputs} {
			if len(list) > MaxArgs {
				return limitf("%s has %d arguments, at most %d (MaxArgs)", what, len(list), MaxArgs)
			}
			for j, p := range list {
				if _, err := checkParam(p, 0); err != nil {
					return fmt.Errorf("%s, argument %d: %w", what, j, err)
				}
			}
		}
	}
	return nil
}

// checkParam checks one argument and returns the cells it holds.
func checkParam(p abiParam, depth int) (int, error) {
	cells, err := checkTypeString(p.Type)
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(p.Type, "tuple") {
		return cells, nil
	}
	if depth+1 > MaxTupleDepth {
		return 0, limitf("tuples nest more than %d deep (MaxTupleDepth)", MaxTupleDepth)
	}
	if len(p.Components) > MaxComponents {
		return 0, limitf("a tuple has %d components, at most %d (MaxComponents)", len(p.Components), MaxComponents)
	}
	sum := 0
	for _, c := range p.Components {
		n, err := checkParam(c, depth+1)
		if err != nil {
			return 0, err
		}
		if sum += n; sum > MaxTypeCells {
			break
		}
	}
	if sum > MaxTypeCells || cells*sum > MaxTypeCells {
		return 0, limitf("type %q holds more than %d values (MaxTypeCells)", p.Type, MaxTypeCells)
	}
	return cells * sum, nil
}
