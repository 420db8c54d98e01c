package decode

// The built-in events, decoded with no ABI and lending their argument
// names to bare signatures.

import (
	"sync"
)

// builtinDecls is the built-in set: decoded with no ABI.
var builtinDecls = []string{
	"event Transfer(address indexed from, address indexed to, uint256 value)",           // ERC-20
	"event Approval(address indexed owner, address indexed spender, uint256 value)",     // ERC-20
	"event Transfer(address indexed from, address indexed to, uint256 indexed tokenId)", // ERC-721
	"event Approval(address indexed owner, address indexed approved, uint256 indexed tokenId)",
	"event ApprovalForAll(address indexed owner, address indexed operator, bool approved)",
	"event TransferSingle(address indexed operator, address indexed from, address indexed to, uint256 id, uint256 value)",
	"event TransferBatch(address indexed operator, address indexed from, address indexed to, uint256[] ids, uint256[] values)",
	"event Swap(address indexed sender, uint256 amount0In, uint256 amount1In, uint256 amount0Out, uint256 amount1Out, address indexed to)",               // Uniswap V2
	"event Swap(address indexed sender, address indexed recipient, int256 amount0, int256 amount1, uint160 sqrtPriceX96, uint128 liquidity, int24 tick)", // Uniswap V3
}

var (
	builtinOnce sync.Once
	builtinSet  *Set
	builtinSigs map[string]*Event
)

func loadBuiltins() {
	builtinOnce.Do(func() {
		builtinSet = NewSet()
		builtinSigs = map[string]*Event{}
		for _, d := range builtinDecls {
			e, err := ParseEvent(d)
			if err != nil {
				panic("decode: bad built-in " + d + ": " + err.Error())
			}
			builtinSet.Add(e)
			if _, ok := builtinSigs[e.Signature]; !ok {
				builtinSigs[e.Signature] = e // ERC-20 Transfer wins for the bare signature
			}
		}
	})
}

func builtinBySig(sig string) *Event { return builtinSigs[sig] }

// Builtin is the built-in event set: ERC-20 Transfer/Approval, ERC-721
// Transfer/Approval/ApprovalForAll, ERC-1155 TransferSingle/TransferBatch,
// Uniswap V2 Swap and Uniswap V3 Swap.
func Builtin() *Set {
	loadBuiltins()
	return builtinSet
}

// BuiltinByName returns the built-in events with that name.
func BuiltinByName(name string) []*Event {
	loadBuiltins()
	var out []*Event
	for _, d := range builtinDecls {
		e, _ := ParseEvent(d)
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}
